import type { RouteRecordRaw } from 'vue-router'
import { TeamOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/agent',
    name: 'agent',
    component: () => import('./AgentView.vue'),
    meta: { title: 'agent.title', menu: { icon: TeamOutlined, order: 90 }, roles: ['agent'] },
  },
]

export default routes
