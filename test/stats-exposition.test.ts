import t from 'tap';
import { Exposition, escapeHelp, escapeLabelValue, formatValue, isMetricType, labelPairs } from '../src/stats/exposition.js';

t.test('values: Go float spelling for the specials', async (t) => {
  t.equal(formatValue(Number.NaN), 'NaN');
  t.equal(formatValue(Infinity), '+Inf');
  t.equal(formatValue(-Infinity), '-Inf');
  t.equal(formatValue(0.012), '0.012');
  t.equal(formatValue(-3), '-3');
  t.equal(formatValue(1e21), '1e+21');
});

t.test('escapes: HELP escapes backslash and line feed; label values also the double quote', async (t) => {
  t.equal(escapeHelp('a\\b\nc"d'), 'a\\\\b\\nc"d');
  t.equal(escapeLabelValue('a\\b\nc"d'), 'a\\\\b\\nc\\"d');
  t.equal(labelPairs({ backend: 'a"b', port: 80, skipped: undefined }), 'backend="a\\"b",port="80"');
  t.equal(labelPairs({}), '');
});

t.test('families: HELP, TYPE, samples, a blank line between families, a final line feed', async (t) => {
  const out = new Exposition();
  out.family('x_total', 'Things.\nMore', 'counter');
  out.sample('x_total', labelPairs({ a: '1' }), 2);
  out.sample('x_total', '', 3);
  out.raw('# HELP y y\n# TYPE y gauge\ny 1\n');
  out.family('z', 'Z', 'histogram');
  t.equal(
    out.text,
    [
      '# HELP x_total Things.\\nMore',
      '# TYPE x_total counter',
      'x_total{a="1"} 2',
      'x_total 3',
      '',
      '# HELP y y',
      '# TYPE y gauge',
      'y 1',
      '',
      '# HELP z Z',
      '# TYPE z histogram',
      '',
    ].join('\n'),
  );
  t.ok(isMetricType('summary'));
  t.notOk(isMetricType('info'));
});
