import type { Frame, Page } from '@playwright/test';

/** The wallet's answer to a bridge request, as the test page's script receives it. */
export type Answer = { id: string; result?: Record<string, unknown>; error?: { code: number; name: string; message: string } };

type Target = Page | Frame;

/**
 * A bridge call from the test page's own script, with no gesture: what a script running on its
 * own (an injected one, a timer) can do.
 */
export function call(page: Target, method: string, params: unknown): Promise<Answer> {
  return page.evaluate(
    ([m, p]) => (window as unknown as { obolCall(m: string, p: unknown): Promise<Answer> }).obolCall(m as string, p),
    [method, params] as const,
  );
}

/**
 * Bridge calls sent from the click handler of the page's #act button, clicked by Playwright: a real,
 * trusted gesture (CDP input), which the page's script then uses for every call in `calls`.
 */
export async function clickCalls(page: Target, calls: Array<[string, unknown]>): Promise<Answer[]> {
  await page.evaluate((c) => (window as unknown as { armClick(c: unknown): void }).armClick(c), calls);
  await page.locator('#act').click();
  return page.evaluate(() => (window as unknown as { clickAnswers: Promise<Answer[]> }).clickAnswers);
}

/** One bridge call on a real click. */
export async function clickCall(page: Target, method: string, params: unknown): Promise<Answer> {
  const [answer] = await clickCalls(page, [[method, params]]);
  if (!answer) throw new Error('no answer');
  return answer;
}
