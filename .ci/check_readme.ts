// Type-checks every ```ts block of README.md against the sources, so the README
// cannot drift from the API. Imports of the package ("@sluice/sluice", "@sluice/sluice/hono", …)
// are pointed at the sources. Run by `deno task check`.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const files = ["README.md"];
const out = join(".ci", ".readme");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const SUBPATHS: Record<string, string> = {
  "": "../../mod.ts",
  "/hono": "../../lib/hono/mod.ts",
  "/arrow": "../../lib/arrow/mod.ts",
};
const written: string[] = [];
for (const file of files) {
  const text = readFileSync(file, "utf8");
  const blocks = [...text.matchAll(/^```(ts|typescript)\n([\s\S]*?)^```$/gm)];
  blocks.forEach((m, i) => {
    const line = text.slice(0, m.index).split("\n").length;
    const code = m[2]!.replace(
      /from "(?:@sluice\/sluice|sluice)(\/[a-z]+)?"/g,
      (_, sub = "") => {
        const target = SUBPATHS[sub];
        if (target === undefined) throw new Error(`${file}:${line}: unknown subpath ${sub}`);
        return `from "${target}"`;
      },
    );
    const name = join(out, `${file.replace(/[\/.]/g, "_")}_${i + 1}_line${line}.ts`);
    writeFileSync(name, code);
    written.push(name);
  });
}
const { success } = await new Deno.Command(Deno.execPath(), {
  args: ["check", ...written],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (success) rmSync(out, { recursive: true, force: true });
console.log(`${written.length} code blocks in ${files.join(", ")}: ${success ? "ok" : "FAILED"}`);
Deno.exit(success ? 0 : 1);
