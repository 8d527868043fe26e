import { describe, expect, it } from 'vitest'
import { add, compare, sign, sub, sum } from '@/utils/decimal'
import { formatDecimal, roundDecimal, signClass } from '@/utils/format'
import { setLocale } from '@/i18n'

describe('decimal strings (exact)', () => {
  it('adds and subtracts without float error', () => {
    expect(add('0.1', '0.2')).toBe('0.3')
    expect(sub('100', '0.00000001')).toBe('99.99999999')
    expect(add('-1.5', '1.5')).toBe('0')
    expect(sum(['1.10', null, '2.205', undefined, '-0.004'])).toBe('3.301')
    expect(compare('10.0', '9.99')).toBe(1)
    expect(sign('-0.000')).toBe(0)
    expect(() => add('abc', '1')).toThrow(/decimal/)
  })
})

describe('formatDecimal', () => {
  it('groups, rounds half-up exactly and signs', () => {
    setLocale('en')
    expect(formatDecimal('1234567.891', { digits: 2 })).toBe('1,234,567.89')
    expect(formatDecimal('0.125', { digits: 2 })).toBe('0.13')
    expect(formatDecimal('-0.004', { digits: 2 })).toBe('0')
    expect(formatDecimal('12.5', { digits: 2, minDigits: 2, signed: true })).toBe('+12.50')
    expect(formatDecimal('-3', { digits: 2 })).toBe('-3')
    expect(formatDecimal('99999999999999999999.99', { digits: 2 })).toBe('99,999,999,999,999,999,999.99')
    expect(formatDecimal(null)).toBe('—')
    expect(roundDecimal('9.995', 2)).toBe('10.00')
  })

  it('colours by sign', () => {
    expect(signClass('-1')).toBe('gf-down')
    expect(signClass('0.00')).toBe('')
    expect(signClass('0.01')).toBe('gf-up')
  })
})
