// Fails when a module under lib/ (or mod.ts) takes part in an import cycle, type-only imports
// included: layers stay one-way (engine → drivers → features → adapters). Run by `deno task check`.
import { relative } from "node:path";
import { fileURLToPath } from "node:url";

const roots = Deno.args.length ? Deno.args : ["mod.ts"];
type Info = {
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
  }[];
};
const modules: Info["modules"] = [];
for (const root of roots) {
  const command = new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    stdout: "piped",
  });
  const { stdout, success } = await command.output();
  if (!success) throw new Error(`deno info ${root} failed`);
  modules.push(...(JSON.parse(new TextDecoder().decode(stdout)) as Info).modules);
}

const local = (s: string) => s.startsWith("file://");
const name = (s: string) => relative(Deno.cwd(), fileURLToPath(s));
const edges = new Map<string, string[]>();
for (const m of modules) {
  if (!local(m.specifier)) continue;
  const to = new Set<string>();
  for (const d of m.dependencies ?? []) {
    for (const s of [d.code?.specifier, d.type?.specifier]) if (s && local(s)) to.add(s);
  }
  edges.set(m.specifier, [...to]);
}

// Tarjan's strongly connected components: every component with more than one module is a cycle.
let index = 0;
const order = new Map<string, number>();
const low = new Map<string, number>();
const stack: string[] = [];
const onStack = new Set<string>();
const cycles: string[][] = [];
function visit(v: string): void {
  order.set(v, index), low.set(v, index), index++;
  stack.push(v), onStack.add(v);
  for (const w of edges.get(v) ?? []) {
    if (!order.has(w)) visit(w), low.set(v, Math.min(low.get(v)!, low.get(w)!));
    else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, order.get(w)!));
  }
  if (low.get(v) === order.get(v)) {
    const component: string[] = [];
    let w: string;
    do w = stack.pop()!, onStack.delete(w), component.push(w); while (w !== v);
    if (component.length > 1 || (edges.get(v) ?? []).includes(v)) cycles.push(component);
  }
}
for (const v of edges.keys()) if (!order.has(v)) visit(v);

if (cycles.length > 0) {
  console.error(`import cycles (${cycles.length}):`);
  for (const c of cycles) console.error("  " + c.map(name).sort().join(" ⇄ "));
  Deno.exit(1);
}
console.log(`no import cycles among ${edges.size} modules`);
