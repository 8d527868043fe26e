/**
 * vue-i18n set-up. Every feature has `src/locales/<feature>.ts` with `export default { en: {...}, zh: {...} }`;
 * the file name (camelCased: `bot-detail` → `botDetail`) is its namespace: `t('dashboard.title')`.
 * 简体中文 is the default when the browser asks for Chinese, English otherwise; the header's switch keeps the
 * choice in localStorage. Ant Design Vue's and dayjs' locales follow (App.vue / {@link setLocale}).
 */
import { createI18n } from 'vue-i18n'
import dayjs from 'dayjs'
import 'dayjs/locale/zh-cn'
import 'dayjs/locale/en'

export const LOCALES = ['zh-CN', 'en'] as const
export type AppLocale = (typeof LOCALES)[number]
export const LOCALE_KEY = 'gridfleet.locale'

export type MessageTree = { [key: string]: string | MessageTree }
export interface LocaleFile {
  en: MessageTree
  zh: MessageTree
}

/** `bot-detail` → `botDetail`. */
export function namespaceOf(path: string): string {
  const base = path.split('/').pop()!.replace(/\.(ts|js)$/, '')
  return base.replace(/[-_]+([a-z0-9])/g, (_, c: string) => c.toUpperCase())
}

/** Merge locale files (`{ path: { default: { en, zh } } }`) into vue-i18n messages keyed by namespace. */
export function collectMessages(modules: Record<string, { default: LocaleFile }>): Record<AppLocale, MessageTree> {
  const en: MessageTree = {}
  const zh: MessageTree = {}
  for (const [path, mod] of Object.entries(modules)) {
    const ns = namespaceOf(path)
    en[ns] = mod.default.en
    zh[ns] = mod.default.zh
  }
  return { en, 'zh-CN': zh }
}

export const localeModules = import.meta.glob<{ default: LocaleFile }>('../locales/*.ts', { eager: true })

function stored(): string | null {
  try {
    return localStorage.getItem(LOCALE_KEY)
  } catch {
    return null
  }
}

/** The saved choice, else zh-CN for a Chinese browser, else English. */
export function detectLocale(saved = stored(), languages: readonly string[] = navigatorLanguages()): AppLocale {
  if (saved && (LOCALES as readonly string[]).includes(saved)) return saved as AppLocale
  const first = languages[0] ?? 'en'
  return first.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en'
}

function navigatorLanguages(): readonly string[] {
  if (typeof navigator === 'undefined') return ['en']
  return navigator.language ? [navigator.language] : navigator.languages ?? ['en']
}

const initial = detectLocale()

export const i18n = createI18n({
  legacy: false,
  locale: initial,
  fallbackLocale: 'en',
  messages: collectMessages(localeModules),
  missingWarn: import.meta.env.DEV,
  fallbackWarn: false,
})

function applySideEffects(locale: AppLocale): void {
  dayjs.locale(locale === 'zh-CN' ? 'zh-cn' : 'en')
  if (typeof document !== 'undefined') document.documentElement.lang = locale
}
applySideEffects(initial)

/** Switch the UI language (and remember it). */
export function setLocale(locale: AppLocale): void {
  i18n.global.locale.value = locale
  try {
    localStorage.setItem(LOCALE_KEY, locale)
  } catch {
    /* private mode: the choice lasts for this page */
  }
  applySideEffects(locale)
}

/** The current UI language. */
export function currentLocale(): AppLocale {
  return i18n.global.locale.value as AppLocale
}
