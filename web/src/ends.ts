// What is left of access that ends: "expires in 3h 12m", or "expired at …" once the end has passed.

/// `ms` as the two largest units that say it ("2d 4h", "3h 12m", "5m 9s", "40s").
export function span(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const units: [number, string][] = [
    [Math.floor(s / 86400), "d"],
    [Math.floor(s / 3600) % 24, "h"],
    [Math.floor(s / 60) % 60, "m"],
    [s % 60, "s"],
  ];
  const first = units.findIndex(([n]) => n > 0);
  if (first < 0) return "0s";
  return units
    .slice(first, first + 2)
    .filter(([n], i) => i === 0 || n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join(" ");
}

/// The end `at` (ms since the epoch) as seen at `now`: what is left, or when it passed (`when` formats it).
export function ending(at: number, now: number, when: string): { expired: boolean; text: string } {
  return at > now ? { expired: false, text: `expires in ${span(at - now)}` } : { expired: true, text: `expired at ${when}` };
}
