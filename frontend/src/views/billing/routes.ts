import type { RouteRecordRaw } from 'vue-router'
import { WalletOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/billing',
    name: 'billing',
    component: () => import('./BillingView.vue'),
    meta: { title: 'billing.title', menu: { icon: WalletOutlined, order: 60 } },
  },
]

export default routes
