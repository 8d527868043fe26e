/**
 * The price-direction colours of the user's convention (preferences store): `up` / `down` for charts,
 * `colorFor(value)` for a signed amount, `sideColor(side)` for buy/sell (buy = up colour). All reactive: charts
 * that read them in a `computed` re-draw when the user switches the convention.
 */
import { computed, type ComputedRef } from 'vue'
import { usePreferencesStore } from '@/stores/preferences'
import { colorFor as colorOf, directionColor, sideDirection, type Palette, type UpColor } from '@/utils/colors'

export interface PnlColors {
  upColor: ComputedRef<UpColor>
  palette: ComputedRef<Palette>
  up: ComputedRef<string>
  down: ComputedRef<string>
  /** The colour of a signed amount ('' when zero/empty). */
  colorFor: (value: string | number | null | undefined) => string
  /** buy → up colour, sell → down colour. */
  sideColor: (side: string | null | undefined) => string
  /** Inline style of a light tag for a side: coloured text and border on a tinted background. */
  sideTagStyle: (side: string | null | undefined) => Record<string, string>
}

export function usePnlColors(): PnlColors {
  const prefs = usePreferencesStore()
  const paletteRef = computed(() => prefs.colors)
  return {
    upColor: computed(() => prefs.upColor),
    palette: paletteRef,
    up: computed(() => paletteRef.value.up),
    down: computed(() => paletteRef.value.down),
    colorFor: (value) => colorOf(value, paletteRef.value),
    sideColor: (side) => directionColor(sideDirection(side), paletteRef.value),
    sideTagStyle: (side): Record<string, string> => {
      const dir = sideDirection(side)
      const p = paletteRef.value
      if (dir === 'flat') return {}
      return dir === 'up'
        ? { color: p.up, background: p.upBg, borderColor: p.upBorder }
        : { color: p.down, background: p.downBg, borderColor: p.downBorder }
    },
  }
}
