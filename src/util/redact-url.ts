/** A URL fit for logs and messages: any user:password@ part is replaced by `***@`. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
