import { probeHardware, type HardwareProbe, type ProbeOptions } from './hardware-probe.js';

/**
 * How long a probe is reused. Devices do not come and go while Ferry runs, and a probe runs
 * vendor tools (nvidia-smi, rocm-smi, flm version) that take up to seconds each.
 * @defaultValue 5 minutes, like hal0's cache of `flm list`.
 */
const CACHE_MS = 5 * 60_000;

/** The hardware probe behind a cache, for request paths (`pullable` on GET /api/models). */
export class HardwareService {
  private cached?: { at: number; probe: Promise<HardwareProbe> };

  constructor(private readonly options: ProbeOptions = {}) {}

  probe(): Promise<HardwareProbe> {
    if (!this.cached || Date.now() - this.cached.at > CACHE_MS) {
      const probe = probeHardware(this.options);
      this.cached = { at: Date.now(), probe };
      probe.catch(() => (this.cached = undefined));
    }
    return this.cached.probe;
  }

  /** True when an NPU runtime (the flm binary) answers here. */
  async npuPresent(): Promise<boolean> {
    return (await this.probe()).npu.present;
  }
}
