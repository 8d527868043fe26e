/**
 * The router: feature routes are collected from `src/views/<feature>/routes.ts` (default export: RouteRecordRaw[]).
 * Routes with `meta.public` render on their own (login, register…); all others render inside the app layout
 * and need a logged-in user with one of `meta.roles` (when given).
 */
import { watch } from 'vue'
import { createRouter, createWebHistory, type Router, type RouteRecordRaw } from 'vue-router'
import AppLayout from '@/layouts/AppLayout.vue'
import { useAuthStore } from '@/stores/auth'
import { i18n } from '@/i18n'
import { featureRoutes } from './routes'
import { HOME, safeRedirect } from './home'

export { HOME }

export function buildRoutes(features: RouteRecordRaw[]): RouteRecordRaw[] {
  const publicRoutes = features.filter((r) => r.meta?.public)
  const appRoutes = features.filter((r) => !r.meta?.public)
  return [
    ...publicRoutes,
    {
      path: '/',
      component: AppLayout,
      children: [
        { path: '', redirect: HOME },
        ...appRoutes,
        {
          path: '/403',
          name: 'forbidden',
          component: () => import('@/views/errors/ForbiddenView.vue'),
          meta: { title: 'layout.forbidden.title' },
        },
        {
          path: '/:pathMatch(.*)*',
          name: 'not-found',
          component: () => import('@/views/errors/NotFoundView.vue'),
          meta: { title: 'layout.notFound.title' },
        },
      ],
    },
  ]
}

export function installGuards(router: Router): void {
  router.beforeEach(async (to) => {
    const auth = useAuthStore()
    await auth.init()
    if (to.meta.public) {
      if (to.meta.guestOnly && auth.isAuthenticated) {
        return safeRedirect(to.query.redirect)
      }
      return true
    }
    if (!auth.isAuthenticated) {
      return { name: 'login', query: to.fullPath !== '/' && to.fullPath !== HOME ? { redirect: to.fullPath } : {} }
    }
    if (!auth.hasRole(to.meta.roles)) return { name: 'forbidden', query: { from: to.fullPath } }
    return true
  })

  const setTitle = (): void => {
    const key = router.currentRoute.value.meta.title
    const t = i18n.global.t
    document.title = key ? `${t(key)} · ${t('common.appName')}` : t('common.appName')
  }
  router.afterEach(setTitle)
  watch(i18n.global.locale, setTitle)

  // the session ended (logout, refresh refused, logout in another tab): leave protected pages
  const auth = useAuthStore()
  watch(
    () => auth.isAuthenticated,
    (on, was) => {
      const current = router.currentRoute.value
      if (was && !on && !current.meta.public) {
        void router.replace({ name: 'login', query: auth.lastEndReason === 'logout' ? {} : { redirect: current.fullPath } })
      }
    },
  )
}

export function createAppRouter(): Router {
  const router = createRouter({
    history: createWebHistory(import.meta.env.BASE_URL),
    routes: buildRoutes(featureRoutes),
    scrollBehavior: (_to, _from, saved) => saved ?? { top: 0 },
  })
  installGuards(router)
  return router
}
