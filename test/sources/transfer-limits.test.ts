import { describe, expect, it } from 'vitest';
import { ConnectionBudget, TransferLimits } from '../../src/sources/http/transfer-limits.js';

describe('ConnectionBudget', () => {
  it('gives every file its first connection before any file a second one', async () => {
    const budget = new ConnectionBudget(3);
    const a = budget.join();
    const b = budget.join();
    const c = budget.join();
    const a1 = await a.acquire();
    // a asks for more while b and c hold nothing: a's second waits, b and c get theirs.
    let a2Got = false;
    const a2 = a.acquire().then((r) => ((a2Got = true), r));
    const b1 = await b.acquire();
    await new Promise((r) => setTimeout(r, 10));
    expect(a2Got).toBe(false);
    const c1 = await c.acquire();
    // All three in use: a's second waits for a release, then gets it since nobody starves.
    c1();
    c.leave();
    await a2;
    expect(a2Got).toBe(true);
    a1();
    b1();
    b.leave();
    a.leave();
  });

  it('never has more than max connections out', async () => {
    const budget = new ConnectionBudget(2);
    const share = budget.join();
    let out = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        const release = await share.acquire();
        peak = Math.max(peak, ++out);
        await new Promise((r) => setTimeout(r, 5));
        out--;
        release();
      }),
    );
    expect(peak).toBe(2);
  });

  it('an aborted wait rejects and takes nothing', async () => {
    const budget = new ConnectionBudget(1);
    const share = budget.join();
    const held = await share.acquire();
    const controller = new AbortController();
    const waiting = share.acquire(controller.signal);
    controller.abort();
    await expect(waiting).rejects.toThrow();
    held();
    const again = await share.acquire();
    again();
  });
});

describe('TransferLimits', () => {
  it('schedules bytes at the capped rate', () => {
    const limits = new TransferLimits({ maxBandwidthBps: 1000 });
    expect(limits.delayMs(0)).toBe(0);
    limits.consume(1000, 0); // a second's worth at t=0
    expect(limits.delayMs(0)).toBe(900); // the 100 ms burst allowance
    expect(limits.delayMs(950)).toBe(0);
  });

  it('has no cap unless one is set', () => {
    const limits = new TransferLimits();
    limits.consume(1e12);
    expect(limits.delayMs()).toBe(0);
    expect(limits.readSize(4096)).toBe(4096);
  });
});
