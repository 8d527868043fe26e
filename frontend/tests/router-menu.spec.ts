import { describe, expect, it } from 'vitest'
import type { RouteRecordRaw } from 'vue-router'
import { buildMenu, collectRoutes } from '@/router/collect'
import { featureRoutes } from '@/router/routes'
import { buildRoutes } from '@/router'
import { safeRedirect } from '@/router/home'

const Dummy = { render: () => null }

describe('feature routes', () => {
  it('are collected from every src/views/*/routes.ts with unique names and paths', () => {
    const names = featureRoutes.map((r) => r.name)
    expect(names).toEqual(expect.arrayContaining(['login', 'register', 'dashboard', 'accounts', 'notifications']))
    expect(new Set(names).size).toBe(names.length)
    const paths = featureRoutes.map((r) => r.path)
    expect(new Set(paths).size).toBe(paths.length)
    for (const route of featureRoutes) expect(route.path.startsWith('/')).toBe(true)
  })

  it('puts public pages outside the app layout and the rest inside', () => {
    const routes = buildRoutes(featureRoutes)
    const top = routes.map((r) => r.name).filter(Boolean)
    expect(top).toContain('login')
    expect(top).not.toContain('dashboard')
    const shell = routes.find((r) => r.path === '/')!
    expect(shell.children!.map((r) => r.name)).toEqual(expect.arrayContaining(['dashboard', 'forbidden', 'not-found']))
  })

  it('rejects a routes.ts without an array', () => {
    expect(() => collectRoutes({ './views/x/routes.ts': { default: {} as unknown as RouteRecordRaw[] } })).toThrow(/array/)
  })
})

describe('buildMenu', () => {
  const routes: RouteRecordRaw[] = [
    { path: '/b', name: 'b', component: Dummy, meta: { title: 'b.title', menu: { order: 20 } } },
    { path: '/a', name: 'a', component: Dummy, meta: { title: 'a.title', menu: { order: 10 } } },
    { path: '/hidden', name: 'hidden', component: Dummy, meta: { title: 'h' } },
    { path: '/admin/users', name: 'admin-users', component: Dummy,
      meta: { title: 'admin.users', roles: ['admin'], menu: { order: 2, group: { key: 'admin', title: 'admin.menu', order: 100 } } } },
    { path: '/admin/fees', name: 'admin-fees', component: Dummy,
      meta: { title: 'admin.fees', roles: ['admin'], menu: { order: 1, group: { key: 'admin', title: 'admin.menu', order: 100 } } } },
  ]

  it('sorts by order, groups submenus and hides items the role may not open', () => {
    const asAdmin = buildMenu(routes, () => true)
    expect(asAdmin.map((e) => e.key)).toEqual(['a', 'b', 'admin'])
    const group = asAdmin[2]!
    expect(group.kind).toBe('group')
    expect(group.kind === 'group' && group.children.map((c) => c.key)).toEqual(['admin-fees', 'admin-users'])

    const asUser = buildMenu(routes, (roles) => !roles || roles.includes('user'))
    expect(asUser.map((e) => e.key)).toEqual(['a', 'b'])
  })
})

describe('safeRedirect', () => {
  it('allows app paths only', () => {
    expect(safeRedirect('/bots?status=running')).toBe('/bots?status=running')
    expect(safeRedirect('//evil.example')).toBe('/dashboard')
    expect(safeRedirect('https://evil.example')).toBe('/dashboard')
    expect(safeRedirect(undefined)).toBe('/dashboard')
  })
})
