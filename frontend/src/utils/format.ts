/** Display formatting in the UI language. Decimal strings are formatted without going through floats. */
import dayjs from 'dayjs'
import { currentLocale } from '@/i18n'
import { isDecimal } from './decimal'

function intlLocale(): string {
  return currentLocale() === 'zh-CN' ? 'zh-CN' : 'en-US'
}

/** Round a decimal string half-up to `digits` fraction digits, exactly (string in, string out). */
export function roundDecimal(text: string, digits: number): string {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim())
  if (!m) return text
  const [, sign = '', int = '0', frac = ''] = m
  if (frac.length <= digits) return `${sign}${int || '0'}${frac ? `.${frac}` : ''}`
  const kept = BigInt(`${int || '0'}${frac.slice(0, digits)}`) + (Number(frac[digits]) >= 5 ? 1n : 0n)
  const s = kept.toString().padStart(digits + 1, '0')
  const out = digits ? `${s.slice(0, -digits)}.${s.slice(-digits)}` : s
  return /^[0.]*$/.test(out) ? out : `${sign}${out}`
}

export interface DecimalFormat {
  /** Maximum fraction digits (default 8, trailing zeros trimmed unless minDigits says otherwise). */
  digits?: number
  minDigits?: number
  /** Prefix positive numbers with "+". */
  signed?: boolean
}

/** "1234567.891" → "1,234,567.89" (digits: 2). Empty/null → "—". Never converts through a float. */
export function formatDecimal(value: string | number | null | undefined, options: DecimalFormat = {}): string {
  if (value === null || value === undefined || value === '') return '—'
  const text = typeof value === 'number' ? String(value) : value
  if (!isDecimal(text)) return text
  const digits = options.digits ?? 8
  const rounded = roundDecimal(text, digits)
  const [intPart = '0', fracPart = ''] = rounded.replace(/^[+-]/, '').split('.')
  const negative = rounded.startsWith('-') && /[1-9]/.test(rounded)
  const grouped = new Intl.NumberFormat(intlLocale(), { maximumFractionDigits: 0 }).format(BigInt(intPart || '0'))
  let frac = fracPart.replace(/0+$/, '')
  if (options.minDigits !== undefined) frac = frac.padEnd(options.minDigits, '0')
  const body = frac ? `${grouped}.${frac}` : grouped
  if (negative) return `-${body}`
  return options.signed && /[1-9]/.test(rounded) ? `+${body}` : body
}

/** 12.3456 → "12.35%" (a number already in percent). */
export function formatPercent(value: number | null | undefined, digits = 2, signed = false): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  const text = new Intl.NumberFormat(intlLocale(), { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value)
  return `${signed && value > 0 ? '+' : ''}${text}%`
}

export function formatNumber(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—'
  return new Intl.NumberFormat(intlLocale(), { maximumFractionDigits: digits }).format(value)
}

/** An ISO date-time or epoch milliseconds → local "2026-11-23 20:31:05". */
export function formatDateTime(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') return '—'
  const d = dayjs(value)
  return d.isValid() ? d.format('YYYY-MM-DD HH:mm:ss') : String(value)
}

export function formatDate(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') return '—'
  const d = dayjs(value)
  return d.isValid() ? d.format('YYYY-MM-DD') : String(value)
}

/** CSS class for a signed amount: gf-up / gf-down / '' (coloured by the user's convention via CSS variables). */
export function signClass(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === '') return ''
  const text = String(value).trim()
  if (text.startsWith('-') && /[1-9]/.test(text)) return 'gf-down'
  return /[1-9]/.test(text) ? 'gf-up' : ''
}
