import type { RouteRecordRaw } from 'vue-router'
import { BellOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/notifications',
    name: 'notifications',
    component: () => import('./NotificationsView.vue'),
    meta: { title: 'notifications.title', menu: { icon: BellOutlined, order: 80 } },
  },
]

export default routes
