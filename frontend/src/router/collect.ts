import type { RouteRecordRaw } from 'vue-router'
import type { MenuGroup } from './meta'
import type { Role } from '@/api/types'
import type { Component } from 'vue'

export interface RoutesModule {
  default: RouteRecordRaw[]
}

/** All feature routes, in file order (each `src/views/<feature>/routes.ts` default-exports its records). */
export function collectRoutes(modules: Record<string, RoutesModule>): RouteRecordRaw[] {
  return Object.keys(modules)
    .sort()
    .flatMap((path) => {
      const routes = modules[path]!.default
      if (!Array.isArray(routes)) throw new Error(`${path} must default-export an array of routes`)
      return routes
    })
}

export interface MenuItem {
  key: string // route name
  path: string
  title: string // i18n key
  icon?: Component
  order: number
  roles?: Role[]
}

export interface MenuSection {
  key: string
  title: string
  icon?: Component
  order: number
  children: MenuItem[]
}

export type MenuEntry = ({ kind: 'item' } & MenuItem) | ({ kind: 'group' } & MenuSection)

/** The side menu from route meta: items sorted by order, grouped items in submenus; filtered by role. */
export function buildMenu(routes: readonly RouteRecordRaw[], allowed: (roles?: Role[]) => boolean): MenuEntry[] {
  const entries: MenuEntry[] = []
  const groups = new Map<string, { kind: 'group' } & MenuSection>()
  const visit = (list: readonly RouteRecordRaw[]): void => {
    for (const route of list) {
      const meta = route.meta
      if (meta?.menu && route.name && allowed(meta.roles)) {
        const item: MenuItem = {
          key: String(route.name),
          path: route.path,
          title: meta.title ?? String(route.name),
          icon: meta.menu.icon,
          order: meta.menu.order,
          roles: meta.roles,
        }
        const group: MenuGroup | undefined = meta.menu.group
        if (group) {
          let section = groups.get(group.key)
          if (!section) {
            section = { kind: 'group', key: group.key, title: group.title, icon: group.icon, order: group.order, children: [] }
            groups.set(group.key, section)
            entries.push(section)
          }
          section.children.push(item)
        } else {
          entries.push({ kind: 'item', ...item })
        }
      }
      if (route.children) visit(route.children)
    }
  }
  visit(routes)
  for (const section of groups.values()) section.children.sort((a, b) => a.order - b.order)
  return entries.sort((a, b) => a.order - b.order)
}
