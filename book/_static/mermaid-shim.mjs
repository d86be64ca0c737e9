// sphinxcontrib-mermaid imports Mermaid as an ES module; load the single-file UMD build (served by this
// site, see book/build.py) as a classic script and hand its global over.
await new Promise((resolve, reject) => {
  const script = document.createElement("script");
  script.src = new URL("./mermaid.min.js", import.meta.url).href;
  script.onload = resolve;
  script.onerror = () => reject(new Error("mermaid.min.js could not be loaded from this site"));
  document.head.appendChild(script);
});
export default globalThis.mermaid;
