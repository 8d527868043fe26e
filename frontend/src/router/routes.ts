import type { RouteRecordRaw } from 'vue-router'
import { collectRoutes, type RoutesModule } from './collect'

/** Every feature's routes: `src/views/<feature>/routes.ts`, default export `RouteRecordRaw[]`. */
export const featureRoutes: RouteRecordRaw[] = collectRoutes(
  import.meta.glob<RoutesModule>('../views/*/routes.ts', { eager: true }),
)
