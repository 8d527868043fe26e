import type { RouteRecordRaw } from 'vue-router'
import { ApiOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/accounts',
    name: 'accounts',
    component: () => import('./AccountsView.vue'),
    meta: { title: 'accounts.title', menu: { icon: ApiOutlined, order: 70 } },
  },
]

export default routes
