import type { RouteRecordRaw } from 'vue-router'
import { SafetyOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/risk',
    name: 'risk',
    component: () => import('./RiskView.vue'),
    meta: { title: 'risk.title', menu: { icon: SafetyOutlined, order: 30 } },
  },
]

export default routes
