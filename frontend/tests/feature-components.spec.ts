import { beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { i18n, setLocale } from '@/i18n'
import ConfigHistory from '@/views/bot-detail/ConfigHistory.vue'
import PagedTable from '@/views/billing/PagedTable.vue'
import type { ConfigSnapshot } from '@/views/bot-detail/store'
import { json, mockFetch } from './helpers'

const global = { plugins: [i18n] }
const snap = (version: number, config: unknown, changes: ConfigSnapshot['changes'] = []): ConfigSnapshot => ({ id: version, bot: 1, version, config, diff: null,
  changes, created_by: 1, created_by_username: 'alice', created_at: '2026-01-01T00:00:00Z', note: '' })

beforeEach(() => {
  vi.unstubAllGlobals()
  setLocale('en')
})

describe('ConfigHistory', () => {
  it('shows each version newest first, with old → new rows (computed when the server sent none)', () => {
    const wrapper = mount(ConfigHistory, {
      props: { snapshots: [
        snap(1, { grid: { upper: '2' } }),
        snap(2, { grid: { upper: '3' } }),
        snap(3, { grid: { upper: '3' }, qty: '1' }, [{ path: 'qty', kind: 'added', old: null, new: '1' }]),
      ] },
      global,
    })
    const text = wrapper.text()
    expect(text.indexOf('v3')).toBeLessThan(text.indexOf('v2'))
    const rows = wrapper.findAll('.gf-diff tr').map((r) => r.text())
    expect(rows[0]).toContain('qty')
    expect(rows[1]).toContain('grid.upper')
    expect(rows[1]).toMatch(/2\s*→\s*3/)
    expect(text).toContain('Initial config')
  })

  it('says when there is no history', () => {
    setLocale('zh-CN')
    expect(mount(ConfigHistory, { props: { snapshots: [] }, global }).text()).toContain('暂无配置版本')
  })
})

describe('PagedTable', () => {
  it('pages through the API and renders decimals, rates and translated tags', async () => {
    const { calls } = mockFetch({
      'GET /api/v1/billing/statements/': () => json(200, { count: 45, results: [{ id: 1, fee: '1.50000000', rate: '0.2', status: 'paid' }] }),
    })
    const wrapper = mount(PagedTable, {
      props: {
        path: '/api/v1/billing/statements/',
        query: { user: 3 },
        columns: [
          { title: 'Fee', key: 'fee', decimal: true },
          { title: 'Rate', key: 'rate', percent: true },
          { title: 'Status', key: 'status', tag: 'billing.statementStatus' },
        ],
      },
      global,
    })
    await flushPromises()
    const q = new URL(calls[0]!.path, 'http://x').searchParams
    expect(q.get('user')).toBe('3')
    expect(q.get('limit')).toBe('20')
    expect(q.get('offset')).toBe('0')
    const text = wrapper.text()
    expect(text).toContain('1.5')
    expect(text).toContain('20%')
    expect(text).toContain('Paid')
  })
})
