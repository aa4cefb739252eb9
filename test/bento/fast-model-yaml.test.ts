import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseSimpleYamlMapping } from '../../src/bento/fast-model-yaml.js';
import { buildModelYaml } from '../../src/bento/model-yaml.js';

const full = (text: string) => parse(text, { schema: 'core', uniqueKeys: false });

/** Model files as BentoML (PyYAML), Neutree and Ferry write them. */
const SAME = [
  buildModelYaml({ name: 'm', version: 'abcdefghabcdefgh', module: 'transformers', labels: { a: 'b', 'x.y/z': 'q r' }, metadata: { n: '7b' }, size: '4.2GB' }),
  `name: iris_clf
version: 7drxqlcgk2bhtlg6
module: bentoml.sklearn
labels: {}
options: {}
metadata:
  acc: 97
  note: 'it''s good'
  empty:
  flag: true
  none: ~
context:
  framework_name: sklearn
  framework_versions:
    scikit-learn: 1.1.1
  bentoml_version: 1.0.0
  python_version: 3.9.12
signatures:
  predict:
    batchable: false
api_version: v1
creation_time: '2022-07-18T09:04:11.512405+00:00'
size: 4.2GB
`,
  'a:\n  b:\n    c: "quoted"\n  d: -5\nnext: x\r\n# trailing comment\n',
];

/** Shapes outside the subset: the fast path must decline, not guess. */
const DECLINED = [
  'a: [1, 2]\n',
  'a:\n  - x\n',
  'a: &x 1\nb: *x\n',
  'a: |\n  text\n',
  'a: 1.5\n',
  'a: 0x1f\n',
  'a: "esc\\n"\n',
  'a: b # comment\n',
  'a: {b: 1}\n',
  '---\na: 1\n',
  'a: 99999999999999999999\n',
  '__proto__: x\n',
  '  a: 1\nb: 2\n',
];

describe('the fast model.yaml reader', () => {
  for (const [i, text] of SAME.entries()) {
    it(`agrees with the yaml package (${i})`, () => {
      expect(parseSimpleYamlMapping(text)).toEqual(full(text));
    });
  }
  for (const text of DECLINED) {
    it(`declines ${JSON.stringify(text)}`, () => {
      expect(parseSimpleYamlMapping(text)).toBeUndefined();
    });
  }
});
