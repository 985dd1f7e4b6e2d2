// Parsers of PostgreSQL's text output (DateStyle ISO, IntervalStyle postgres) into Arrow values.

const TWO_32 = 4294967296;

/**
 * Writes an integer of at most 53 bits as the int64 at `words[2i]` (low) and `words[2i + 1]`
 * (high), little-endian as Arrow buffers are.
 */
export function writeInt64(words: Int32Array, index: number, n: number): void {
  words[2 * index] = n >>> 0;
  words[2 * index + 1] = Math.floor(n / TWO_32) | 0;
}

function writeBigInt64(words: Int32Array, index: number, n: bigint): void {
  words[2 * index] = Number(n & 0xffffffffn) | 0;
  words[2 * index + 1] = Number(BigInt.asIntN(64, n) >> 32n) | 0;
}

/**
 * ±infinity dates and timestamps become the largest and smallest values of the Arrow type
 * (negated maximum for -infinity): the encoding DuckDB uses for its own ±infinity, so DuckDB
 * reads them back as infinity; other readers see a date far outside any real one.
 */
export const DATE_INFINITY = 2147483647;
const INT64_MAX_HI = 0x7fffffff;

function isInfinity(bytes: Uint8Array, start: number, end: number): 0 | 1 | -1 {
  const c = bytes[start];
  if (c === 0x69 && end - start === 8) return 1; // "infinity"
  if (c === 0x2d && bytes[start + 1] === 0x69 && end - start === 9) return -1;
  return 0;
}

// Days from 1970-01-01 to a proleptic Gregorian date (year 0 = 1 BC), as PostgreSQL counts.
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

// Reads `count` digits at `p`; -1 if any is not a digit.
function digits(bytes: Uint8Array, p: number, count: number): number {
  let n = 0;
  for (let i = 0; i < count; i++) {
    const d = bytes[p + i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

// Scratch state of the last parse (avoids allocating a result object per value).
let parsedEnd = 0;
let parsedDays = 0;

// Parses "YYYY-MM-DD" (four or more year digits) at `p`, sets parsedDays/parsedEnd; false if not.
function readDate(bytes: Uint8Array, p: number, end: number): boolean {
  let q = p;
  while (q < end && bytes[q] !== 0x2d) q++;
  const yearDigits = q - p;
  if (yearDigits < 4 || q + 6 > end) return false;
  const year = digits(bytes, p, yearDigits);
  const month = digits(bytes, q + 1, 2);
  const day = digits(bytes, q + 4, 2);
  if (year < 0 || month < 1 || day < 1 || bytes[q + 3] !== 0x2d) return false;
  parsedDays = daysFromCivil(year, month, day);
  parsedEnd = q + 6;
  return true;
}

// " BC" at the end of a date or timestamp.
function isBc(bytes: Uint8Array, end: number, from: number): boolean {
  return end - from >= 3 && bytes[end - 3] === 0x20 && bytes[end - 2] === 0x42 &&
    bytes[end - 1] === 0x43;
}

/**
 * Days since 1970-01-01 of a date's text (`2024-01-31`, `0044-03-15 BC`, `infinity`); `NaN` when
 * the text is not an ISO date.
 */
export function parseDate(bytes: Uint8Array, start: number, end: number): number {
  const inf = isInfinity(bytes, start, end);
  if (inf !== 0) return inf * DATE_INFINITY;
  const bc = isBc(bytes, end, start);
  const last = bc ? end - 3 : end;
  if (!readDate(bytes, start, last) || parsedEnd !== last) return NaN;
  if (!bc) return parsedDays;
  // Year N BC is year 1 - N; redo the count with it.
  let q = start;
  while (bytes[q] !== 0x2d) q++;
  const year = 1 - digits(bytes, start, q - start);
  return daysFromCivil(year, digits(bytes, q + 1, 2), digits(bytes, q + 4, 2));
}

// Reads "HH:MM:SS[.ffffff]" at `p`: microseconds, parsedEnd set; -1 if not.
function readTime(bytes: Uint8Array, p: number, end: number): number {
  if (p + 8 > end || bytes[p + 2] !== 0x3a || bytes[p + 5] !== 0x3a) return -1;
  const h = digits(bytes, p, 2);
  const m = digits(bytes, p + 3, 2);
  const s = digits(bytes, p + 6, 2);
  if (h < 0 || m < 0 || s < 0) return -1;
  let us = 0;
  let q = p + 8;
  if (q < end && bytes[q] === 0x2e) {
    q++;
    let scale = 100000;
    while (q < end) {
      const d = bytes[q]! - 0x30;
      if (d < 0 || d > 9) break;
      us += d * scale;
      scale /= 10;
      q++;
    }
  }
  parsedEnd = q;
  return (h * 3600 + m * 60 + s) * 1e6 + us;
}

/** Microseconds since midnight of a time's text (`24:00:00` is 86,400,000,000). */
export function parseTime(
  bytes: Uint8Array,
  start: number,
  end: number,
  words: Int32Array,
  index: number,
): boolean {
  const us = readTime(bytes, start, end);
  if (us < 0 || parsedEnd !== end) return false;
  writeInt64(words, index, us);
  return true;
}

/**
 * Microseconds since 1970-01-01 00:00 UTC of a timestamp's or timestamptz's text (`2024-01-31
 * 12:00:00.5`, `… +05:30`, `… BC`, `infinity`); for timestamptz the UTC offset PostgreSQL printed
 * (its `TimeZone` setting) is subtracted, so the value is the same instant whatever the setting.
 */
export function parseTimestamp(
  bytes: Uint8Array,
  start: number,
  end: number,
  words: Int32Array,
  index: number,
): boolean {
  const inf = isInfinity(bytes, start, end);
  if (inf !== 0) {
    words[2 * index] = inf === 1 ? -1 : 1;
    words[2 * index + 1] = inf === 1 ? INT64_MAX_HI : ~INT64_MAX_HI;
    return true;
  }
  const bc = isBc(bytes, end, start);
  const last = bc ? end - 3 : end;
  if (!readDate(bytes, start, last) || bytes[parsedEnd] !== 0x20) return false;
  let days = parsedDays;
  if (bc) {
    let q = start;
    while (bytes[q] !== 0x2d) q++;
    days = daysFromCivil(
      1 - digits(bytes, start, q - start),
      digits(bytes, q + 1, 2),
      digits(bytes, q + 4, 2),
    );
  }
  const us = readTime(bytes, parsedEnd + 1, last);
  if (us < 0) return false;
  let offset = 0;
  let p = parsedEnd;
  if (p < last) {
    const sign = bytes[p];
    if ((sign !== 0x2b && sign !== 0x2d) || p + 3 > last) return false;
    const oh = digits(bytes, p + 1, 2);
    let om = 0;
    let os = 0;
    p += 3;
    if (p < last && bytes[p] === 0x3a) om = digits(bytes, p + 1, 2), p += 3;
    if (p < last && bytes[p] === 0x3a) os = digits(bytes, p + 1, 2), p += 3;
    if (oh < 0 || om < 0 || os < 0 || p !== last) return false;
    offset = (sign === 0x2d ? -1 : 1) * (oh * 3600 + om * 60 + os);
  }
  const seconds = days * 86400 + Math.floor(us / 1e6) - offset;
  const fraction = us % 1e6;
  // Exact as a double within ±285 years of 1970; beyond, through BigInt.
  if (Math.abs(seconds) < 9e9) writeInt64(words, index, seconds * 1e6 + fraction);
  else {
    // PostgreSQL counts from 2000, Arrow from 1970: its last 30 years do not fit.
    const big = BigInt(seconds) * 1000000n + BigInt(fraction);
    if (big !== BigInt.asIntN(64, big)) return false;
    writeBigInt64(words, index, big);
  }
  return true;
}

const INTERVAL_UNITS: Record<string, number> = {
  year: 12,
  years: 12,
  mon: 1,
  mons: 1,
  day: 0,
  days: 0,
};

/**
 * Writes an interval's text in IntervalStyle postgres (`1 year 2 mons -3 days +04:05:06.5`) as
 * MonthDayNano: int32 months, int32 days, int64 nanoseconds at `words[4i …]`. False if the text is
 * not in that style.
 */
export function parseInterval(text: string, words: Int32Array, index: number): boolean {
  let months = 0;
  let days = 0;
  let us = 0n;
  const parts = text.split(" ");
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const colon = part.indexOf(":");
    if (colon !== -1) {
      const m = /^([+-]?)(\d+):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(part);
      if (m === null || i !== parts.length - 1) return false;
      // Hours reach ±2,562,047,788 (PostgreSQL's int64 µs), beyond a double's exact integers.
      const abs = (BigInt(m[2]!) * 3600n + BigInt(Number(m[3]) * 60 + Number(m[4]))) * 1000000n +
        BigInt((m[5] ?? "").padEnd(6, "0"));
      us = m[1] === "-" ? -abs : abs;
      continue;
    }
    const unit = INTERVAL_UNITS[parts[i + 1] ?? ""];
    if (unit === undefined || !/^[+-]?\d+$/.test(part)) return false;
    const n = Number(part);
    if (unit === 0) days += n;
    else months += n * unit;
    i++;
  }
  if (months !== (months | 0) || days !== (days | 0)) return false;
  words[4 * index] = months;
  words[4 * index + 1] = days;
  // MonthDayNano holds ±292 years of nanoseconds; PostgreSQL's time part reaches ±292,000 years.
  const nanos = us * 1000n;
  if (nanos !== BigInt.asIntN(64, nanos)) return false;
  words[4 * index + 2] = Number(nanos & 0xffffffffn) | 0;
  words[4 * index + 3] = Number(nanos >> 32n) | 0;
  return true;
}
