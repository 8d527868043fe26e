import 'vue-router'
import type { Component } from 'vue'
import type { Role } from '@/api/types'

export interface MenuGroup {
  /** Unique key of the submenu (items with the same key are grouped). */
  key: string
  /** i18n key of the submenu title. */
  title: string
  icon?: Component
  order: number
}

export interface MenuMeta {
  /** An @ant-design/icons-vue component, imported explicitly: `import { RobotOutlined } from '@ant-design/icons-vue'`. */
  icon?: Component
  /** Position in the side menu (smaller first; see frontend/README.md for the numbers in use). */
  order: number
  /** Put the item in a submenu. */
  group?: MenuGroup
}

declare module 'vue-router' {
  interface RouteMeta {
    /** i18n key of the page title (browser tab, menu, page header). */
    title?: string
    /** Show in the side menu. */
    menu?: MenuMeta
    /** Roles allowed; omitted or empty: every logged-in user. */
    roles?: Role[]
    /** Reachable without logging in; rendered without the app layout (login, register, reset). */
    public?: boolean
    /** A public page that a logged-in user is sent away from (login, register). */
    guestOnly?: boolean
    /** Highlight this menu item (route name) instead, e.g. a detail page under its list. */
    activeMenu?: string
  }
}
