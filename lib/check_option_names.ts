/**
 * Throws a `TypeError` for an option name a function does not know (a typo such as `batchSize`
 * would otherwise be ignored without a word), naming the closest known one.
 *
 * @param options The options object as given (`undefined` passes).
 * @param known Every option name the function accepts.
 * @param what The function's name, for the message.
 * @throws {TypeError} On an unknown name, or options that are not an object.
 */
export function checkOptionNames(
  options: object | undefined,
  known: readonly string[],
  what: string,
): void {
  if (options === undefined) return;
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Cannot use options of ${what}: current value is ${String(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const closest = closestName(name, known);
    throw new TypeError(
      `Cannot use ${name} as an option of ${what}: it is not one${
        closest ? ` (did you mean ${closest}?)` : ""
      }; the options are ${known.join(", ")}`,
    );
  }
}

// What other libraries call sluice's options (batch sizes are bytes here, not rows).
const ALIASES: Record<string, string> = {
  batchsize: "targetBatchBytes",
  fetchsize: "targetBatchBytes",
  chunksize: "targetBatchBytes",
  yieldper: "targetBatchBytes",
  rows: "maxBatchRows",
  timeout: "statementTimeoutMs",
  querytimeout: "statementTimeoutMs",
  abortsignal: "signal",
  keys: "key",
  orderby: "key",
};

/** The known name nearest to `name` (an alias, else edit distance ignoring case), if any. */
function closestName(name: string, known: readonly string[]): string | undefined {
  const a = name.toLowerCase();
  const alias = ALIASES[a.replace(/[_-]/g, "")];
  if (alias !== undefined && known.includes(alias)) return alias;
  let best: string | undefined;
  let bestScore = Infinity;
  for (const candidate of known) {
    const b = candidate.toLowerCase();
    // A name that contains the other (batchSize ~ targetBatchBytes's "batch") is a strong hint.
    const score = b.includes(a) || a.includes(b) ? 0 : distance(a, b);
    if (score < bestScore) bestScore = score, best = candidate;
  }
  return bestScore <= Math.max(3, Math.floor(name.length / 2)) ? best : undefined;
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j]! + 1,
        current[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length]!;
}
