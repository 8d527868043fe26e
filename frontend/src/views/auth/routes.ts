import type { RouteRecordRaw } from 'vue-router'

const routes: RouteRecordRaw[] = [
  {
    path: '/login',
    name: 'login',
    component: () => import('./LoginView.vue'),
    meta: { title: 'auth.login.title', public: true, guestOnly: true },
  },
  {
    path: '/register',
    name: 'register',
    component: () => import('./RegisterView.vue'),
    meta: { title: 'auth.register.title', public: true, guestOnly: true },
  },
  {
    path: '/forgot-password',
    name: 'password-reset-request',
    component: () => import('./ResetRequestView.vue'),
    meta: { title: 'auth.resetRequest.title', public: true },
  },
  {
    // the link in the reset e-mail: /reset-password?uid=…&token=…
    path: '/reset-password',
    name: 'password-reset-confirm',
    component: () => import('./ResetConfirmView.vue'),
    meta: { title: 'auth.resetConfirm.title', public: true },
  },
]

export default routes
