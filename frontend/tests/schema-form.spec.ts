import { beforeEach, describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import { i18n, setLocale } from '@/i18n'
import SchemaForm from '@/views/bots/SchemaForm.vue'
import { collectPaths, defaultValue, resolve, unplacedErrors, validateTree, type JsonSchema } from '@/views/bots/schemaForm'

const DEC = { type: 'string', format: 'decimal', pattern: '^-?(\\d+(\\.\\d*)?|\\.\\d+)$' }
const SCHEMA: JsonSchema = {
  type: 'object',
  title: 'GridConfig',
  required: ['grid'],
  properties: {
    grid: { $ref: '#/$defs/GridSpec', title: 'Grid', description: 'Price range', 'x-path': 'GridConfig.grid' },
    investment: { ...DEC, type: ['string', 'null'], exclusiveMinimum: 0, title: 'Investment', default: null },
    slippage: { ...DEC, minimum: 0, exclusiveMaximum: 1, default: '0.0005', title: 'Slippage' },
    paper_only: { type: 'boolean', title: 'Paper only', default: false },
    layers: { type: 'array', items: { $ref: '#/$defs/Layer' }, default: [], title: 'Layers' },
  },
  $defs: {
    GridType: { enum: ['arithmetic', 'geometric'], type: 'string' },
    GridSpec: {
      type: 'object',
      properties: {
        type: { $ref: '#/$defs/GridType', default: 'arithmetic', title: 'Type' },
        lower: { ...DEC, exclusiveMinimum: 0, title: 'Lower', description: 'Lowest level price.' },
        levels: { anyOf: [{ type: 'integer', minimum: 2, maximum: 1000 }, { type: 'null' }], default: null, title: 'Levels' },
      },
    },
    Layer: { type: 'object', required: ['level'], properties: { level: { type: 'integer', minimum: 0, title: 'Level' }, size: { ...DEC, title: 'Size', exclusiveMinimum: 0 } } },
  },
}
const VALUE = { grid: { type: 'arithmetic', lower: '100', levels: 5 }, investment: '1000', slippage: '0.0005', paper_only: false, layers: [{ level: 0, size: '1' }] }

beforeEach(() => setLocale('en'))

describe('schema helpers', () => {
  it('resolves refs and nullable anyOf, builds defaults and validates bounds exactly', () => {
    const levels = resolve((SCHEMA.$defs!.GridSpec!.properties as Record<string, JsonSchema>).levels, SCHEMA)
    expect(levels.type).toBe('integer')
    expect(levels.nullable).toBe(true)
    expect(defaultValue({ $ref: '#/$defs/Layer' }, SCHEMA)).toEqual({ level: 0 })
    const problems = validateTree(SCHEMA, { ...VALUE, grid: { lower: '0', levels: 1 }, slippage: '1', investment: 'x', layers: [{ level: 0, size: '-1' }] }, SCHEMA)
    expect(problems).toEqual({
      'grid.lower': [{ code: 'gt', limit: '0' }],
      'grid.levels': [{ code: 'min', limit: '2' }],
      investment: [{ code: 'decimal' }],
      slippage: [{ code: 'lt', limit: '1' }],
      'layers.0.size': [{ code: 'gt', limit: '0' }],
    })
    expect(validateTree(SCHEMA, VALUE, SCHEMA)).toEqual({})
  })

  it('knows which server messages have a field and which do not', () => {
    const shown = collectPaths(SCHEMA, VALUE, SCHEMA)
    expect(shown.has('grid.lower')).toBe(true)
    expect(shown.has('layers.0.size')).toBe(true)
    const errors = { config: ['a', 'b'], 'config.grid.lower': ['a'], 'config.unknown_key': ['b'] }
    expect(unplacedErrors(errors, 'config', shown)).toEqual(['unknown_key: b'])
  })
})

describe('SchemaForm', () => {
  it('renders inputs from the schema with labels, help and enum options', () => {
    const wrapper = mount(SchemaForm, { props: { schema: SCHEMA, modelValue: VALUE }, global: { plugins: [i18n] } })
    const paths = wrapper.findAll('[data-path]').map((e) => e.attributes('data-path'))
    expect(paths).toEqual(expect.arrayContaining(['grid', 'grid.type', 'grid.lower', 'grid.levels', 'investment', 'slippage', 'paper_only', 'layers', 'layers.0', 'layers.0.level', 'layers.0.size']))
    expect(wrapper.find('[data-path="grid.lower"] input').element).toHaveProperty('value', '100')
    expect(wrapper.find('[data-path="paper_only"] button[role=switch]').exists()).toBe(true)
    expect(wrapper.find('[data-path="grid.type"] .ant-select').exists()).toBe(true)
    // x-path labels are translated, the rest use the schema's title
    expect(wrapper.find('[data-path="grid"] legend').text()).toBe('Grid')
    setLocale('zh-CN')
  })

  it('emits the updated config with decimals kept as strings and nested values merged', async () => {
    const wrapper = mount(SchemaForm, { props: { schema: SCHEMA, modelValue: VALUE }, global: { plugins: [i18n] } })
    await wrapper.find('[data-path="grid.lower"] input').setValue('95.50')
    const emitted = wrapper.emitted('update:modelValue')![0]![0] as typeof VALUE
    expect(emitted.grid).toEqual({ type: 'arithmetic', lower: '95.50', levels: 5 })
    expect(emitted.investment).toBe('1000')
    await wrapper.find('[data-path="investment"] input').setValue('')
    expect((wrapper.emitted('update:modelValue')!.at(-1)![0] as typeof VALUE).investment).toBeNull()
  })

  it('puts the server messages on nested fields and lists the rest above the form', () => {
    const errors = {
      config: ['x'],
      'config.grid.lower': ['lower (120) must be below upper (110)'],
      'config.layers.0.size': ['Input should be greater than 0'],
      'config.mystery': ['unknown field'],
    }
    const wrapper = mount(SchemaForm, { props: { schema: SCHEMA, modelValue: VALUE, errors }, global: { plugins: [i18n] } })
    const hasError = (path: string) => wrapper.find(`[data-path="${path}"] .ant-form-item-explain-error`).exists()
    expect(hasError('grid.lower')).toBe(true)
    expect(wrapper.find('[data-path="grid.lower"]').text()).toContain('lower (120) must be below upper (110)')
    expect(wrapper.find('[data-path="layers.0.size"]').text()).toContain('Input should be greater than 0')
    expect(hasError('grid.levels')).toBe(false)
    const alert = wrapper.find('[role=alert]')
    expect(alert.text()).toContain('mystery: unknown field')
    expect(alert.text()).not.toContain('must be below')
  })

  it('shows its own bound checks while typing', () => {
    const wrapper = mount(SchemaForm, { props: { schema: SCHEMA, modelValue: { ...VALUE, slippage: '2' } }, global: { plugins: [i18n] } })
    expect(wrapper.find('[data-path="slippage"]').text()).toContain('Must be less than 1')
  })
})
