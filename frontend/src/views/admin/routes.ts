import type { RouteRecordRaw } from 'vue-router'
import { SettingOutlined, UserOutlined, DollarOutlined } from '@ant-design/icons-vue'

const group = { key: 'admin', title: 'admin.title', icon: SettingOutlined, order: 100 }

const routes: RouteRecordRaw[] = [
  {
    path: '/admin/users',
    name: 'admin-users',
    component: () => import('./UsersView.vue'),
    meta: { title: 'admin.users', menu: { icon: UserOutlined, order: 1, group }, roles: ['admin'] },
  },
  {
    path: '/admin/billing',
    name: 'admin-billing',
    component: () => import('./BillingAdminView.vue'),
    meta: { title: 'admin.billing', menu: { icon: DollarOutlined, order: 2, group }, roles: ['admin'] },
  },
]

export default routes
