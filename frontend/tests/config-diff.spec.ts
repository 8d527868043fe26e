import { beforeEach, describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import { i18n, setLocale } from '@/i18n'
import ConfigDiff from '@/views/bots/ConfigDiff.vue'
import { diffConfigs, serverDiffRows, showValue } from '@/views/bots/diff'

beforeEach(() => setLocale('en'))

describe('config diff', () => {
  it('turns the server dry-run diff into sorted rows with kinds', () => {
    const rows = serverDiffRows({
      'grid.upper': { old: '70000', new: '71000' },
      layers: { old: [], new: [{ level: 0, qty: '1' }] },
      'trailing.rebound_pct': { old: null, new: '0.5', added: true },
      qty_per_order: { old: '0.1', new: null, removed: true },
    })
    expect(rows.map((r) => [r.path, r.kind])).toEqual([
      ['grid.upper', 'changed'], ['layers', 'changed'], ['qty_per_order', 'removed'], ['trailing.rebound_pct', 'added'],
    ])
    expect(serverDiffRows(null)).toEqual([])
  })

  it('diffs two configs locally (lists compare whole)', () => {
    expect(diffConfigs({ grid: { lower: '1', upper: '2' }, layers: [1] }, { grid: { lower: '1', upper: '3' }, layers: [1], investment: '5' })).toEqual([
      { path: 'grid.upper', kind: 'changed', old: '2', new: '3' },
      { path: 'investment', kind: 'added', old: null, new: '5' },
    ])
    expect(showValue(null)).toBe('—')
    expect(showValue({ a: 1 })).toBe('{"a":1}')
  })

  it('renders old → new per row, and an empty state', () => {
    const wrapper = mount(ConfigDiff, {
      props: { rows: serverDiffRows({ 'grid.upper': { old: '70000', new: '71000' }, 'trailing.rebound_pct': { old: null, new: '0.5', added: true } }) },
      global: { plugins: [i18n] },
    })
    const rows = wrapper.findAll('.ant-table-tbody tr.ant-table-row').map((r) => r.text())
    expect(rows[0]).toMatch(/grid\.upper\s*70000\s*→\s*71000/)
    expect(rows[1]).toContain('added')
    expect(wrapper.find('.old').text()).toBe('70000')
    expect(wrapper.find('.new').text()).toBe('71000')
    setLocale('zh-CN')
    const empty = mount(ConfigDiff, { props: { rows: [] }, global: { plugins: [i18n] } })
    expect(empty.text()).toContain('没有变更')
  })
})
