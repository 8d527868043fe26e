import { beforeEach, describe, expect, it } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { i18n, setLocale } from '@/i18n'
import ConditionNode from '@/views/risk/ConditionNode.vue'
import {
  addChild, describe as describeTree, newCompare, newGroup, normalizeErrorKeys, normalizeRule, removeChild, setKind,
  toggleNot, wrapInGroup, type Condition,
} from '@/views/risk/tree'

const leaf = (metric: string, op: string, value: unknown) => ({ metric, op, value }) as Condition

beforeEach(() => setLocale('en'))

describe('risk condition tree (pure edits)', () => {
  it('adds, nests, negates, switches AND/OR and removes, producing the engine JSON', () => {
    let tree: Condition = newGroup('all', [leaf('drawdown_pct', '>', '10')])
    tree = addChild(tree, newGroup('any', [leaf('price', '<', { metric: 'lower' })]))
    tree = setKind(tree, 'any')
    const inner = (tree as { any: Condition[] }).any[1]!
    const negated = toggleNot(addChild(inner, leaf('price', '>', { metric: 'upper' })))
    tree = { any: [(tree as { any: Condition[] }).any[0]!, negated] }
    expect(tree).toEqual({
      any: [
        { metric: 'drawdown_pct', op: '>', value: '10' },
        { not: { any: [{ metric: 'price', op: '<', value: { metric: 'lower' } }, { metric: 'price', op: '>', value: { metric: 'upper' } }] } },
      ],
    })
    expect(describeTree(tree)).toBe('(drawdown_pct > 10 OR NOT (price < lower OR price > upper))')
    expect(toggleNot(toggleNot(newCompare()))).toEqual(newCompare())
    tree = removeChild(tree, 1)
    expect(tree).toEqual({ any: [{ metric: 'drawdown_pct', op: '>', value: '10' }] })
    // the last child of a group stays (a group needs one)
    expect(removeChild(tree, 0)).toEqual(tree)
    expect(wrapInGroup(leaf('price', '<', '5'), 'all')).toEqual({ all: [leaf('price', '<', '5'), newCompare()] })
  })

  it('fills rule defaults and maps the engine error paths onto the builder paths', () => {
    expect(normalizeRule({ name: 'dd', when: leaf('price', '<', '1') })).toEqual({
      name: 'dd', scope: 'global', when: leaf('price', '<', '1'), action: 'alert', cooldown_s: 0, once: false,
    })
    expect(normalizeErrorKeys({ 'rules.0.when.<all>.all.0.<leaf>.value.<number>': ['Input should be a valid decimal'] }))
      .toEqual({ 'rules.0.when.all.0.value': ['Input should be a valid decimal'] })
  })
})

describe('ConditionNode builder', () => {
  it('emits the new tree when conditions and groups are added and removed', async () => {
    const root = newGroup('all', [leaf('drawdown_pct', '>', '10')])
    const wrapper = mount(ConditionNode, { props: { node: root, path: 'rules.0.when' }, global: { plugins: [i18n] } })
    await wrapper.find('[data-action=add-condition]').trigger('click')
    expect(wrapper.emitted('update')![0]![0]).toEqual({ all: [leaf('drawdown_pct', '>', '10'), newCompare()] })
    await wrapper.find('[data-action=add-group]').trigger('click')
    expect(wrapper.emitted('update')![1]![0]).toEqual({ all: [leaf('drawdown_pct', '>', '10'), { any: [newCompare()] }] })

    // a two-child group: removing the second child; wrapping the first in a group
    await wrapper.setProps({ node: { all: [leaf('price', '<', '5'), leaf('equity', '<', '900')] } })
    await flushPromises()
    const removes = wrapper.findAll('[data-action=remove]')
    expect(removes).toHaveLength(2)
    await removes[1]!.trigger('click')
    expect(wrapper.emitted('update')!.at(-1)![0]).toEqual({ all: [leaf('price', '<', '5')] })
    await wrapper.findAll('[data-action=wrap]')[0]!.trigger('click')
    expect(wrapper.emitted('update')!.at(-1)![0]).toEqual({ all: [{ all: [leaf('price', '<', '5'), newCompare()] }, leaf('equity', '<', '900')] })
  })

  it('shows the server message on the condition it belongs to', () => {
    const wrapper = mount(ConditionNode, {
      props: { node: { all: [leaf('price', '>', 'abc')] }, path: 'rules.0.when', errors: { 'rules.0.when.all.0.value': ['Input should be a valid decimal'] } },
      global: { plugins: [i18n] },
    })
    const leafEl = wrapper.find('[data-path="rules.0.when.all.0"]')
    expect(leafEl.text()).toContain('Input should be a valid decimal')
  })
})
