import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { nextTick } from 'vue'
import { i18n, setLocale } from '@/i18n'
import { PREFERENCES_KEY, defaultUpColor, usePreferencesStore } from '@/stores/preferences'
import { GREEN, RED, colorFor, cssVariables, directionOf, palette, sideDirection, withAlpha } from '@/utils/colors'
import { usePnlColors } from '@/composables/usePnlColors'
import DecimalText from '@/components/DecimalText.vue'
import SideTag from '@/components/SideTag.vue'

/** '#f6465d' → 'rgb(246, 70, 93)' or the hex itself: how the DOM may report an inline colour. */
function sameColor(actual: string, hex: string): boolean {
  const m = /^#(..)(..)(..)$/.exec(hex)!
  const rgb = `rgb(${parseInt(m[1]!, 16)}, ${parseInt(m[2]!, 16)}, ${parseInt(m[3]!, 16)})`
  return actual.replace(/\s+/g, ' ').toLowerCase() === rgb || actual.toLowerCase() === hex
}

beforeEach(() => {
  localStorage.clear()
  setLocale('en')
  setActivePinia(createPinia())
})
afterEach(() => {
  localStorage.clear()
  setLocale('en')
})

describe('colour helper', () => {
  it('swaps the two colours between the conventions', () => {
    expect(palette('green')).toMatchObject({ up: GREEN, down: RED })
    expect(palette('red')).toMatchObject({ up: RED, down: GREEN })
    expect(palette('red').upBg).toBe(withAlpha(RED, 0.1))
    expect(withAlpha('#0ecb81', 0.25)).toBe('rgba(14,203,129,0.25)')
  })

  it('reads the direction of decimal strings and numbers without floats', () => {
    expect(directionOf('12.5')).toBe('up')
    expect(directionOf('+0.0001')).toBe('up')
    expect(directionOf('-0.00000001')).toBe('down')
    expect(directionOf('-0.000')).toBe('flat')
    expect(directionOf('0')).toBe('flat')
    expect(directionOf(null)).toBe('flat')
    expect(directionOf('')).toBe('flat')
    expect(directionOf(-3)).toBe('down')
    expect(directionOf(Number.NaN)).toBe('flat')
    expect(sideDirection('buy')).toBe('up')
    expect(sideDirection('sell')).toBe('down')
    expect(sideDirection('empty')).toBe('flat')
  })

  it('colours a profit and a loss by the convention', () => {
    expect(colorFor('5', palette('green'))).toBe(GREEN)
    expect(colorFor('-5', palette('green'))).toBe(RED)
    expect(colorFor('5', palette('red'))).toBe(RED)
    expect(colorFor('-5', palette('red'))).toBe(GREEN)
    expect(colorFor('0.00', palette('red'))).toBe('')
    expect(cssVariables(palette('red'))).toMatchObject({ '--gf-up': RED, '--gf-down': GREEN })
  })
})

describe('preferences store', () => {
  it('defaults to red-up in Chinese and green-up otherwise, following a language switch', () => {
    expect(defaultUpColor('zh-CN')).toBe('red')
    expect(defaultUpColor('en')).toBe('green')
    const prefs = usePreferencesStore()
    expect(prefs.upColorChoice).toBeNull()
    expect(prefs.upColor).toBe('green')
    setLocale('zh-CN')
    expect(prefs.upColor).toBe('red')
    expect(prefs.colors.up).toBe(RED)
    setLocale('en')
    expect(prefs.upColor).toBe('green')
  })

  it('keeps an explicit choice whatever the language, and persists it', () => {
    const prefs = usePreferencesStore()
    prefs.setUpColor('green')
    setLocale('zh-CN')
    expect(prefs.upColor).toBe('green')
    expect(JSON.parse(localStorage.getItem(PREFERENCES_KEY)!)).toEqual({ upColor: 'green' })

    // a new page load (new pinia) reads it back
    setActivePinia(createPinia())
    const again = usePreferencesStore()
    expect(again.upColorChoice).toBe('green')
    expect(again.upColor).toBe('green')

    // back to "follow the language"
    again.setUpColor(null)
    expect(again.upColor).toBe('red')
    expect(JSON.parse(localStorage.getItem(PREFERENCES_KEY)!)).toEqual({})
  })

  it('ignores unreadable or unknown stored values', () => {
    localStorage.setItem(PREFERENCES_KEY, '{not json')
    expect(usePreferencesStore().upColorChoice).toBeNull()
    setActivePinia(createPinia())
    localStorage.setItem(PREFERENCES_KEY, JSON.stringify({ upColor: 'purple' }))
    expect(usePreferencesStore().upColor).toBe('green')
  })

  it('writes the palette to the CSS variables of the page', async () => {
    const prefs = usePreferencesStore()
    const root = document.documentElement
    expect(root.style.getPropertyValue('--gf-up')).toBe(GREEN)
    prefs.setUpColor('red')
    await nextTick()
    expect(root.style.getPropertyValue('--gf-up')).toBe(RED)
    expect(root.style.getPropertyValue('--gf-down')).toBe(GREEN)
    expect(root.dataset.upColor).toBe('red')
  })

  it('follows a change made in another tab', () => {
    const prefs = usePreferencesStore()
    localStorage.setItem(PREFERENCES_KEY, JSON.stringify({ upColor: 'red' }))
    window.dispatchEvent(new StorageEvent('storage', { key: PREFERENCES_KEY }))
    expect(prefs.upColor).toBe('red')
  })
})

describe('usePnlColors', () => {
  it('gives reactive colours for values and sides', () => {
    const prefs = usePreferencesStore()
    const colors = usePnlColors()
    expect(colors.up.value).toBe(GREEN)
    expect(colors.sideColor('buy')).toBe(GREEN)
    prefs.setUpColor('red')
    expect(colors.up.value).toBe(RED)
    expect(colors.down.value).toBe(GREEN)
    expect(colors.colorFor('-1.5')).toBe(GREEN)
    expect(colors.sideColor('buy')).toBe(RED)
    expect(colors.sideColor('sell')).toBe(GREEN)
    expect(colors.sideTagStyle('buy')).toMatchObject({ color: RED })
    expect(colors.sideTagStyle('other')).toEqual({})
  })
})

describe('profit cells and side tags under both conventions', () => {
  function mountWith(upColor: 'green' | 'red') {
    const pinia = createPinia()
    setActivePinia(pinia)
    usePreferencesStore().setUpColor(upColor)
    const global = { plugins: [i18n, pinia] }
    return {
      profit: mount(DecimalText, { props: { value: '12.34', digits: 2, colored: true }, global }),
      loss: mount(DecimalText, { props: { value: '-0.5', digits: 2, colored: true }, global }),
      zero: mount(DecimalText, { props: { value: '0.00', digits: 2, colored: true }, global }),
      buy: mount(SideTag, { props: { side: 'buy' }, global }),
      sell: mount(SideTag, { props: { side: 'sell' }, global }),
    }
  }
  const colorOf = (w: ReturnType<typeof mount>) => (w.element as HTMLElement).style.color

  it('green-up (Binance): profit and buy green, loss and sell red', () => {
    const w = mountWith('green')
    expect(sameColor(colorOf(w.profit), GREEN)).toBe(true)
    expect(w.profit.text()).toBe('+12.34')
    expect(sameColor(colorOf(w.loss), RED)).toBe(true)
    expect(colorOf(w.zero)).toBe('')
    expect(sameColor(colorOf(w.buy), GREEN)).toBe(true)
    expect(w.buy.text()).toBe('Buy')
    expect(sameColor(colorOf(w.sell), RED)).toBe(true)
  })

  it('red-up (Chinese markets): profit and buy red, loss and sell green', () => {
    const w = mountWith('red')
    expect(sameColor(colorOf(w.profit), RED)).toBe(true)
    expect(sameColor(colorOf(w.loss), GREEN)).toBe(true)
    expect(sameColor(colorOf(w.buy), RED)).toBe(true)
    expect(sameColor(colorOf(w.sell), GREEN)).toBe(true)
  })

  it('re-colours a mounted cell when the user switches', async () => {
    const w = mountWith('green')
    usePreferencesStore().setUpColor('red')
    await nextTick()
    expect(sameColor(colorOf(w.profit), RED)).toBe(true)
    expect(sameColor(colorOf(w.buy), RED)).toBe(true)
  })
})
