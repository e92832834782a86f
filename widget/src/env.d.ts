/** Vite's `?inline` CSS import: the (minified, in a build) stylesheet as a string. */
declare module '*.css?inline' {
  const css: string;
  export default css;
}
