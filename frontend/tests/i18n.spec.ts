// Every locale file (src/locales/*.ts, all features): same keys in en and zh, no empty message, every message
// compiles with vue-i18n (a stray "@" or "|" breaks a page at run time), and the namespaces are unique.
import { describe, expect, it } from 'vitest'
import { baseCompile } from '@intlify/message-compiler'
import { collectMessages, detectLocale, localeModules, namespaceOf, type MessageTree } from '@/i18n'

function leaves(tree: MessageTree, prefix = ''): Map<string, string> {
  const out = new Map<string, string>()
  for (const [key, value] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${key}` : key
    if (typeof value === 'string') out.set(path, value)
    else if (value && typeof value === 'object') for (const [k, v] of leaves(value, path)) out.set(k, v)
    else out.set(path, `<<${typeof value}>>`)
  }
  return out
}

const files = Object.entries(localeModules)

describe('locale files', () => {
  it('exist (common, layout and the features)', () => {
    const names = files.map(([path]) => namespaceOf(path))
    expect(names).toEqual(expect.arrayContaining(['common', 'layout', 'auth', 'dashboard', 'accounts', 'notifications']))
    expect(new Set(names).size).toBe(names.length)
  })

  describe.each(files)('%s', (path, mod) => {
    it('exports { en, zh }', () => {
      expect(mod.default).toBeTypeOf('object')
      expect(mod.default.en).toBeTypeOf('object')
      expect(mod.default.zh).toBeTypeOf('object')
    })

    it('has the same keys in en and zh', () => {
      const en = leaves(mod.default.en)
      const zh = leaves(mod.default.zh)
      const missingInZh = [...en.keys()].filter((k) => !zh.has(k))
      const missingInEn = [...zh.keys()].filter((k) => !en.has(k))
      expect({ path, missingInZh, missingInEn }).toEqual({ path, missingInZh: [], missingInEn: [] })
    })

    it('has only non-empty messages that vue-i18n compiles', () => {
      const problems: string[] = []
      for (const [lang, tree] of [['en', mod.default.en], ['zh', mod.default.zh]] as const) {
        for (const [key, message] of leaves(tree)) {
          if (message.startsWith('<<') || !message.trim()) {
            problems.push(`${lang}.${key}: empty or not a string`)
            continue
          }
          const errors: string[] = []
          baseCompile(message, { onError: (e) => errors.push(e.message) })
          if (errors.length) problems.push(`${lang}.${key}: ${errors.join('; ')} in ${JSON.stringify(message)}`)
        }
      }
      expect(problems).toEqual([])
    })

    it('uses the same {placeholders} in en and zh', () => {
      const en = leaves(mod.default.en)
      const zh = leaves(mod.default.zh)
      const names = (m: string) => [...m.matchAll(/\{\s*([A-Za-z_][\w]*)\s*\}/g)].map((x) => x[1]).sort()
      const diff = [...en.entries()]
        .filter(([k, m]) => zh.has(k) && JSON.stringify(names(m)) !== JSON.stringify(names(zh.get(k)!)))
        .map(([k]) => k)
      expect(diff).toEqual([])
    })
  })

  it('merges files under their namespace', () => {
    const messages = collectMessages({
      '../locales/bot-detail.ts': { default: { en: { title: 'Bot' }, zh: { title: '机器人' } } },
    })
    expect(messages.en).toEqual({ botDetail: { title: 'Bot' } })
    expect(messages['zh-CN']).toEqual({ botDetail: { title: '机器人' } })
  })
})

describe('detectLocale', () => {
  it('prefers the saved choice, then Chinese browsers, then English', () => {
    expect(detectLocale('en', ['zh-CN'])).toBe('en')
    expect(detectLocale(null, ['zh-CN'])).toBe('zh-CN')
    expect(detectLocale(null, ['zh-TW'])).toBe('zh-CN')
    expect(detectLocale(null, ['en-US'])).toBe('en')
    expect(detectLocale('fr', ['de-DE'])).toBe('en')
  })
})
