import type { RouteRecordRaw } from 'vue-router'
import { RobotOutlined } from '@ant-design/icons-vue'

const routes: RouteRecordRaw[] = [
  {
    path: '/bots',
    name: 'bots',
    component: () => import('./BotsView.vue'),
    meta: { title: 'bots.title', menu: { icon: RobotOutlined, order: 20 } },
  },
  {
    path: '/bots/new',
    name: 'bots-create',
    component: () => import('./BotEditView.vue'),
    meta: { title: 'bots.edit.createTitle', activeMenu: 'bots' },
  },
  {
    path: '/bots/:id(\\d+)/edit',
    name: 'bots-edit',
    component: () => import('./BotEditView.vue'),
    meta: { title: 'bots.edit.editTitle', activeMenu: 'bots' },
  },
]

export default routes
