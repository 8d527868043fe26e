import type { RouteRecordRaw } from 'vue-router'
import { DashboardOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/dashboard',
    name: 'dashboard',
    component: () => import('./DashboardView.vue'),
    meta: { title: 'dashboard.title', menu: { icon: DashboardOutlined, order: 10 } },
  },
]

export default routes
