import type { RouteRecordRaw } from 'vue-router'
import { LineChartOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/analytics',
    name: 'analytics',
    component: () => import('./AnalyticsView.vue'),
    meta: { title: 'analytics.title', menu: { icon: LineChartOutlined, order: 50 } },
  },
]

export default routes
