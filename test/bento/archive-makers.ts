import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';

export const EVIL_SCRIPT = new URL('../fixtures/make-evil-archive.py', import.meta.url).pathname;

export interface ModelDirSpec {
  name: string;
  version: string;
  creationTime?: string;
  /** Relative path -> content; model.yaml is written from the other fields. */
  files?: Record<string, string | Buffer>;
  /** Extra model.yaml lines, kept verbatim (unknown keys). */
  extraYaml?: string;
}

/** A model directory as BentoML writes one: model.yaml with its key order, plus files. */
export async function writeModelDir(dir: string, spec: ModelDirSpec): Promise<void> {
  await mkdir(dir, { recursive: true });
  const yaml = [
    `name: ${spec.name}`,
    `version: ${spec.version}`,
    'module: transformers',
    'labels:',
    '  owner: ferry-test',
    'options: {}',
    'metadata: {}',
    'context:',
    '  framework_name: transformers',
    '  framework_versions: {}',
    "  bentoml_version: '1.4.0'",
    "  python_version: '3.11.7'",
    'signatures: {}',
    'api_version: v1',
    `creation_time: '${spec.creationTime ?? '2026-01-01T12:00:00.123456+00:00'}'`,
    ...(spec.extraYaml ? [spec.extraYaml] : []),
    '',
  ].join('\n');
  await writeFile(join(dir, 'model.yaml'), yaml);
  for (const [rel, content] of Object.entries(spec.files ?? {})) {
    await mkdir(join(dir, rel, '..'), { recursive: true });
    await writeFile(join(dir, rel), content);
  }
}

/** Python's shutil.make_archive, as BentoML calls it (root_dir = the model, so a `.` entry comes first). */
export async function pythonMakeArchive(modelDir: string, outBase: string, format: 'gztar' | 'xztar'): Promise<string> {
  const { stdout } = await execa('python3', ['-c', 'import shutil, sys; print(shutil.make_archive(sys.argv[1], sys.argv[2], root_dir=sys.argv[3]))', outBase, format, modelDir]);
  return stdout.trim();
}

/** GNU tar with -z or -J. */
export async function gnuTar(modelDir: string, out: string, flag: '-z' | '-J', extra: string[] = []): Promise<string> {
  await execa('tar', ['-C', modelDir, flag, '-cf', out, ...extra, '.']);
  return out;
}

export async function evilArchive(kind: string, out: string): Promise<string> {
  await execa('python3', [EVIL_SCRIPT, kind, out]);
  return out;
}
