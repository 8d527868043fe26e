import type { RouteRecordRaw } from 'vue-router'

const routes: RouteRecordRaw[] = [
  {
    path: '/bots/:id(\\d+)',
    name: 'bot-detail',
    component: () => import('./BotDetailView.vue'),
    meta: { title: 'botDetail.title', activeMenu: 'bots' },
  },
]

export default routes
