/**
 * Exact arithmetic on the decimal strings the API sends (never through floats): add, subtract, compare, sign.
 * Enough for totals and differences in the UI; formatting is in ./format.ts.
 */

interface Scaled {
  value: bigint
  scale: number
}

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/

function parse(text: string): Scaled {
  const m = DECIMAL.exec(text.trim())
  if (!m || (!m[2] && !m[3])) throw new Error(`not a decimal: ${JSON.stringify(text)}`)
  const frac = m[3] ?? ''
  const digits = `${m[2] || '0'}${frac}`
  const value = BigInt(digits) * (m[1] === '-' ? -1n : 1n)
  return { value, scale: frac.length }
}

function align(a: Scaled, b: Scaled): [bigint, bigint, number] {
  const scale = Math.max(a.scale, b.scale)
  return [a.value * 10n ** BigInt(scale - a.scale), b.value * 10n ** BigInt(scale - b.scale), scale]
}

function format(value: bigint, scale: number): string {
  const negative = value < 0n
  let digits = (negative ? -value : value).toString().padStart(scale + 1, '0')
  let out = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits
  if (scale) out = out.replace(/\.?0+$/, '')
  digits = out
  return negative && digits !== '0' ? `-${digits}` : digits
}

/** True when `text` is a decimal number string ("12", "-0.5", "3."). */
export function isDecimal(text: unknown): text is string {
  return typeof text === 'string' && DECIMAL.test(text.trim()) && /\d/.test(text)
}

export function add(a: string, b: string): string {
  const [x, y, scale] = align(parse(a), parse(b))
  return format(x + y, scale)
}

export function sub(a: string, b: string): string {
  const [x, y, scale] = align(parse(a), parse(b))
  return format(x - y, scale)
}

/** -1, 0 or 1. */
export function compare(a: string, b: string): -1 | 0 | 1 {
  const [x, y] = align(parse(a), parse(b))
  return x < y ? -1 : x > y ? 1 : 0
}

/** -1, 0 or 1. */
export function sign(a: string): -1 | 0 | 1 {
  const { value } = parse(a)
  return value < 0n ? -1 : value > 0n ? 1 : 0
}

/** Sum of decimal strings (null/undefined entries are skipped); "0" for none. */
export function sum(values: readonly (string | null | undefined)[]): string {
  return values.reduce<string>((total, v) => (v === null || v === undefined || v === '' ? total : add(total, v)), '0')
}
