import type { RouteRecordRaw } from 'vue-router'
import { SwapOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/trades',
    name: 'trades',
    component: () => import('./TradesView.vue'),
    meta: { title: 'trades.title', menu: { icon: SwapOutlined, order: 40 } },
  },
]

export default routes
