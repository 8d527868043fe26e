import { describe, expect, it } from 'vitest'
import { createPinia } from 'pinia'
import { mount } from '@vue/test-utils'
import { h } from 'vue'
import { i18n, setLocale } from '@/i18n'
import AsyncState from '@/components/AsyncState.vue'
import DecimalText from '@/components/DecimalText.vue'
import { ApiError } from '@/api/errors'

const global = { plugins: [i18n] }

describe('AsyncState', () => {
  it('shows a skeleton on first load, then the content', async () => {
    setLocale('en')
    const wrapper = mount(AsyncState, { props: { loading: true }, slots: { default: () => h('p', { class: 'content' }, 'rows') }, global })
    expect(wrapper.find('.ant-skeleton').exists()).toBe(true)
    expect(wrapper.find('.content').exists()).toBe(false)
    await wrapper.setProps({ loading: false })
    expect(wrapper.find('.content').text()).toBe('rows')
  })

  it('shows the empty text when there is nothing', async () => {
    const wrapper = mount(AsyncState, { props: { loading: false, empty: true, emptyText: 'No bots yet' }, global })
    expect(wrapper.text()).toContain('No bots yet')
  })

  it("shows the server's message and a retry button on error", async () => {
    const wrapper = mount(AsyncState, {
      props: { loading: false, error: new ApiError(403, 'You do not have permission to perform this action.') },
      global,
    })
    expect(wrapper.text()).toContain('No permission')
    expect(wrapper.text()).toContain('You do not have permission to perform this action.')
    await wrapper.find('[data-test=retry]').trigger('click')
    expect(wrapper.emitted('retry')).toHaveLength(1)
  })

  it('speaks Chinese after a language switch', async () => {
    setLocale('zh-CN')
    const wrapper = mount(AsyncState, { props: { loading: false, error: new ApiError(0, 'x') }, global })
    expect(wrapper.text()).toContain('无法连接服务器')
    setLocale('en')
  })
})

describe('DecimalText', () => {
  it('formats exactly and colours by sign', () => {
    const withPinia = { plugins: [i18n, createPinia()] }
    const up = mount(DecimalText, { props: { value: '1234.5678', digits: 2, colored: true, unit: 'USDT' }, global: withPinia })
    expect(up.text()).toBe('+1,234.57USDT')
    expect(up.find('.gf-up').exists()).toBe(true)
    const down = mount(DecimalText, { props: { value: '-0.5', colored: true }, global: withPinia })
    expect(down.find('.gf-down').exists()).toBe(true)
  })
})
