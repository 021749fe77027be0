// node validate.mjs FILE...: validate every kafka.strimzi.io/v1 document against the schema
// of its Strimzi CRD; exit 1 listing every invalid one. Other kinds are left to
// kubernetes-validate. An unknown Strimzi kind is an error, not a skip.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const GROUP = "kafka.strimzi.io/v1";
let failures = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length > 0) {
      console.error(`${file}: YAML error: ${doc.errors[0].message}`);
      failures++;
      continue;
    }
    const obj = doc.toJS();
    if (!obj || obj.apiVersion !== GROUP) continue;
    const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    let Kind;
    try {
      Kind = (await import(`@kubernetes-models/strimzi-kafka-operator/${GROUP}/${obj.kind}`))[obj.kind];
    } catch {
      console.error(`${where}: no schema for kind ${obj.kind}`);
      failures++;
      continue;
    }
    try {
      new Kind(obj).validate();
      checked++;
      console.log(`ok ${where}`);
    } catch (e) {
      console.error(`${where}: ${e.message}`);
      failures++;
    }
  }
}
if (checked === 0 && failures === 0) {
  console.error("no Strimzi resource found");
  process.exit(1);
}
process.exit(failures > 0 ? 1 : 0);
