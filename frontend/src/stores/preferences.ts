/**
 * Display preferences of this browser (not secrets, kept in localStorage `gridfleet.preferences`).
 *
 * `upColor`: which colour means up/profit/buy. Until the user picks one it follows the UI language: red-up for
 * 简体中文 (the convention of Chinese markets), green-up otherwise (Binance and western markets). The chosen
 * palette is also written to the `--gf-up` / `--gf-down` CSS variables on <html>.
 */
import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import { i18n } from '@/i18n'
import { cssVariables, palette, type UpColor } from '@/utils/colors'

export const PREFERENCES_KEY = 'gridfleet.preferences'
const UP_COLORS: readonly UpColor[] = ['green', 'red']

interface StoredPreferences {
  upColor?: UpColor
}

function storage(): Storage | null {
  try {
    return typeof localStorage !== 'undefined' ? localStorage : null
  } catch {
    return null
  }
}

function load(): StoredPreferences {
  try {
    const raw = storage()?.getItem(PREFERENCES_KEY)
    const data: unknown = raw ? JSON.parse(raw) : {}
    if (!data || typeof data !== 'object') return {}
    const upColor = (data as { upColor?: unknown }).upColor
    return UP_COLORS.includes(upColor as UpColor) ? { upColor: upColor as UpColor } : {}
  } catch {
    return {} // unreadable: the defaults
  }
}

/** The convention of a UI language: red-up for Chinese, green-up otherwise. */
export function defaultUpColor(locale: string): UpColor {
  return locale.toLowerCase().startsWith('zh') ? 'red' : 'green'
}

export const usePreferencesStore = defineStore('preferences', () => {
  /** The user's explicit choice; null = follow the UI language. */
  const upColorChoice = ref<UpColor | null>(load().upColor ?? null)
  const upColor = computed<UpColor>(() => upColorChoice.value ?? defaultUpColor(String(i18n.global.locale.value)))
  const colors = computed(() => palette(upColor.value))

  function save(): void {
    try {
      const data: StoredPreferences = upColorChoice.value ? { upColor: upColorChoice.value } : {}
      storage()?.setItem(PREFERENCES_KEY, JSON.stringify(data))
    } catch {
      /* private mode: the choice lasts for this page */
    }
  }

  /** Pick a convention (null: follow the UI language again). */
  function setUpColor(choice: UpColor | null): void {
    upColorChoice.value = choice && UP_COLORS.includes(choice) ? choice : null
    save()
  }

  function applyToDocument(): void {
    if (typeof document === 'undefined') return
    const root = document.documentElement
    for (const [name, value] of Object.entries(cssVariables(colors.value))) root.style.setProperty(name, value)
    root.dataset.upColor = upColor.value
  }
  watch(colors, applyToDocument, { immediate: true })

  // another tab changed the preference
  if (typeof window !== 'undefined') {
    window.addEventListener('storage', (event) => {
      if (event.key === PREFERENCES_KEY || event.key === null) upColorChoice.value = load().upColor ?? null
    })
  }

  return { upColorChoice, upColor, colors, setUpColor }
})
