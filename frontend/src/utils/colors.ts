/**
 * Price-direction colours. Two conventions: western/Binance markets show a rise (profit, buy) in green and a fall
 * (loss, sell) in red; Chinese markets the other way round (red = up). {@link palette} gives the colours of one
 * convention; every place that colours PnL, price direction or a buy/sell side goes through it (the preferences
 * store also writes them to the `--gf-up` / `--gf-down` CSS variables used by the `gf-up` / `gf-down` classes).
 */

/** Which colour means "up" (a rise, a profit, a buy). */
export type UpColor = 'green' | 'red'
export type Direction = 'up' | 'down' | 'flat'

export const GREEN = '#0ecb81'
export const RED = '#f6465d'

export interface Palette {
  up: string
  down: string
  /** Light backgrounds (tags, range bars). */
  upBg: string
  downBg: string
  upBorder: string
  downBorder: string
}

/** '#0ecb81', 0.25 → 'rgba(14,203,129,0.25)' */
export function withAlpha(hex: string, alpha: number): string {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex)
  if (!m) return hex
  return `rgba(${parseInt(m[1]!, 16)},${parseInt(m[2]!, 16)},${parseInt(m[3]!, 16)},${alpha})`
}

export function palette(upColor: UpColor): Palette {
  const up = upColor === 'red' ? RED : GREEN
  const down = upColor === 'red' ? GREEN : RED
  return {
    up,
    down,
    upBg: withAlpha(up, 0.1),
    downBg: withAlpha(down, 0.1),
    upBorder: withAlpha(up, 0.45),
    downBorder: withAlpha(down, 0.45),
  }
}

/** The direction of a signed amount (a decimal string or a number): '-0.5' → down, '0.00' → flat. */
export function directionOf(value: string | number | null | undefined): Direction {
  if (value === null || value === undefined || value === '') return 'flat'
  if (typeof value === 'number') return !Number.isFinite(value) || value === 0 ? 'flat' : value > 0 ? 'up' : 'down'
  const text = value.trim()
  if (!/[1-9]/.test(text)) return 'flat'
  return text.startsWith('-') ? 'down' : 'up'
}

/** A buy is drawn in the up colour, a sell in the down colour; anything else has no direction. */
export function sideDirection(side: string | null | undefined): Direction {
  return side === 'buy' ? 'up' : side === 'sell' ? 'down' : 'flat'
}

/** The colour of a direction ('' for flat: the text keeps its normal colour). */
export function directionColor(direction: Direction, p: Palette): string {
  return direction === 'up' ? p.up : direction === 'down' ? p.down : ''
}

/** The colour of a signed amount under a convention: colorFor('-3', palette('red')) → green. */
export function colorFor(value: string | number | null | undefined, p: Palette): string {
  return directionColor(directionOf(value), p)
}

/** The CSS variables the `gf-up` / `gf-down` classes (global.css) read. */
export function cssVariables(p: Palette): Record<string, string> {
  return {
    '--gf-up': p.up,
    '--gf-down': p.down,
    '--gf-up-bg': p.upBg,
    '--gf-down-bg': p.downBg,
    '--gf-up-border': p.upBorder,
    '--gf-down-border': p.downBorder,
  }
}
