import { describe, expect, it } from 'vitest';
import { expandCommandTemplate, expandTemplateString, splitCommandLine } from '../../src/slots/command-template.js';
import { DEFAULT_BACKENDS, resolveBackend } from '../../src/slots/resolve-backend.js';

describe('command templates', () => {
  it('splits like a shell without expanding anything', () => {
    expect(splitCommandLine(`a  'b c' "d \\"e\\"" f\\ g $HOME $(rm -rf /) ;ls`)).toEqual(['a', 'b c', 'd "e"', 'f g', '$HOME', '$(rm', '-rf', '/)', ';ls']);
    expect(splitCommandLine(`x '' ""`)).toEqual(['x', '', '']);
    expect(() => splitCommandLine(`x 'open`)).toThrow(/unterminated/);
  });

  it('substitutes per argument, so a value with spaces or shell syntax stays one argument', () => {
    const argv = expandCommandTemplate('llama-server -m {path} --port {port} --alias=slot-{name} {extra_args}', {
      path: '/models/my model; rm -rf ~.gguf',
      port: 8081,
      name: 'primary',
      extra_args: ['--ctx-size', '8192', '--flash-attn'],
    });
    expect(argv).toEqual(['llama-server', '-m', '/models/my model; rm -rf ~.gguf', '--port', '8081', '--alias=slot-primary', '--ctx-size', '8192', '--flash-attn']);
  });

  it('drops a whole-argument placeholder whose value is empty or absent', () => {
    expect(expandCommandTemplate('srv {extra_args} --port {port} {mmproj}', { extra_args: [], port: 1, mmproj: undefined })).toEqual(['srv', '--port', '1']);
  });

  it('refuses unknown placeholders, lists inside an argument and an empty program', () => {
    expect(() => expandCommandTemplate('srv {nope}', { port: 1 })).toThrow(/unknown placeholder \{nope\}/);
    expect(() => expandCommandTemplate('srv --x={extra_args}', { extra_args: ['a'] })).toThrow(/whole argument/);
    expect(() => expandCommandTemplate('{bin} -x', { bin: '' })).toThrow(/names no program/);
  });

  it('expands health URLs with encoded values', () => {
    expect(expandTemplateString('http://127.0.0.1:{port}/health?m={model}', { port: 8081, model: 'qwen3:4b' })).toBe('http://127.0.0.1:8081/health?m=qwen3%3A4b');
  });
});

describe('resolveBackend', () => {
  it('uses the slot backend from config, else the device default', () => {
    const configured = { fast: { command: 'my-server --port {port}', ready_timeout_s: 5, stop_grace_s: 2 } };
    expect(resolveBackend({ name: 'primary', device: 'cpu', backend: 'fast' }, configured)).toEqual({
      name: 'fast',
      command: 'my-server --port {port}',
      healthUrl: 'http://127.0.0.1:{port}/health',
      readyTimeoutMs: 5000,
      stopGraceMs: 2000,
    });
    expect(resolveBackend({ name: 'primary', device: 'gpu-vulkan' }, configured).command).toBe(DEFAULT_BACKENDS['llama.cpp'].command);
    expect(resolveBackend({ name: 'npu', device: 'npu' }, {})).toMatchObject({ name: 'flm', stopGraceMs: 10_000, readyTimeoutMs: 120_000 });
    expect(() => resolveBackend({ name: 'x', device: 'cpu', backend: 'vllm' }, configured)).toThrow(/does not define/);
  });

  it('has default templates that expand with the documented placeholders', () => {
    for (const b of Object.values(DEFAULT_BACKENDS)) {
      expect(() => expandCommandTemplate(b.command, { path: '/m.gguf', model: 'm', port: 8081, context_size: 4096, extra_args: [] })).not.toThrow();
    }
  });
});
