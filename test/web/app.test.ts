/**
 * The browser app end to end in headless Chromium (Debian's `chromium`, driven by playwright-core):
 * a preset, a bad field value and the CLI's message for it, YAML export and re-import, a shared
 * link. With XBAR_SCREENSHOT=FILE it also saves a screenshot there (the README's).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { serve } from '../../src/cli/serve.js';
import { xbar } from '../helpers/cli.js';
import { ROOT } from '../helpers/models.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM} (Debian's chromium package) to run the app in`;

/** The app built into a folder of the test's own (as `npm run build:web` builds it). */
async function buildApp(): Promise<string> {
  const out = mkdtempSync(join(tmpdir(), 'xbar-web-'));
  const { build } = await import('vite');
  await build({ configFile: join(ROOT, 'web/vite.config.ts'), build: { outDir: out, emptyOutDir: true } });
  return out;
}

const statusOf = (page: Page) => page.locator('#status').innerText();

/** Types `value` into the form's field at `path` and leaves it, as a user does (it applies on change). */
async function setField(page: Page, path: string, value: string): Promise<void> {
  await page.fill(`[data-path="${path}"]`, value);
  await page.press(`[data-path="${path}"]`, 'Tab');
}
const yamlOf = (page: Page) => page.locator('#yaml').innerText();

describe('the browser app’s build', () => {
  it('refuses app code that imports a Node module (Vite would stub it out and build)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-web-node-'));
    writeFileSync(join(dir, 'index.html'), '<script type="module" src="./main.ts"></script>');
    writeFileSync(
      join(dir, 'main.ts'),
      "import { readFileSync } from 'node:fs';\nconsole.log(readFileSync);\n",
    );
    const { build } = await import('vite');
    await assert.rejects(
      () =>
        build({
          configFile: join(ROOT, 'web/vite.config.ts'),
          root: dir,
          build: { outDir: join(dir, 'out'), emptyOutDir: true },
        }),
      /main\.ts imports the Node module 'node:fs': the browser app must not/,
    );
  });
});

describe('the browser app', { skip }, () => {
  let browser: Browser;
  let server: Awaited<ReturnType<typeof serve>>;
  let url = '';
  before(async () => {
    const root = await buildApp();
    assert.doesNotMatch(
      readFileSync(join(root, 'index.html'), 'utf8'),
      /(["'])\/(work|home|root|tmp)\//,
      'no machine path in the built page',
    );
    server = await serve(root, '127.0.0.1', 0);
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });
  /** A new page on the app, once its first spec is shown and valid, and the page's script errors. */
  const openApp = async (link = url): Promise<{ page: Page; errors: string[] }> => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(link);
    await page.waitForSelector('body[data-valid="true"]');
    return { page, errors };
  };
  after(async () => {
    await browser?.close();
    server?.close();
  });

  it('loads with a preset, switches presets, and shows the CLI’s message for a bad field', async () => {
    const { page, errors } = await openApp();
    assert.match(await statusOf(page), /^valid: rram-clipformer, K and V on crossbars/);
    await page.selectOption('#preset', 'pcm-aihwkit');
    await page.locator('#status', { hasText: 'pcm-aihwkit' }).waitFor();
    assert.match(await statusOf(page), /^valid: pcm-aihwkit, attention digital/);
    assert.equal(await page.inputValue('[data-path="adc.bits"]'), '9');

    await setField(page, 'adc.bits', '99');
    await page.waitForSelector('body[data-valid="false"]');
    const message = await statusOf(page);
    assert.match(message, /adc\.bits: 99 is not allowed, use a whole number 1\.\.16/);
    // the same spec as a file, checked by the CLI: the same message
    const dir = mkdtempSync(join(tmpdir(), 'xbar-web-spec-'));
    writeFileSync(join(dir, 'spec.yaml'), await yamlOf(page));
    const cli = xbar(['hw', 'show', 'spec.yaml'], { cwd: dir });
    assert.notEqual(cli.status, 0);
    assert.equal(cli.stderr.trim(), `xbar: ${message.trim()}`);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('exports the spec as YAML and imports it back to the same state; the CLI reads the export', async () => {
    const { page } = await openApp();
    await setField(page, 'readNoise.sigma', '0.07');
    await page.locator('#yaml', { hasText: '0.07' }).waitFor();
    const before = await yamlOf(page);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    const file = join(mkdtempSync(join(tmpdir(), 'xbar-web-export-')), download.suggestedFilename());
    await download.saveAs(file);
    assert.equal(readFileSync(file, 'utf8'), before);
    const shown = xbar(['hw', 'show', file]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /sigma: 0\.07/);

    await page.selectOption('#preset', 'ideal');
    await page.locator('#status', { hasText: 'ideal' }).waitFor();
    await page.setInputFiles('#import', file);
    await page.locator('#yaml', { hasText: '0.07' }).waitFor();
    assert.equal(await yamlOf(page), before);
    await page.close();
  });

  it('costs a model on the spec as `xbar cost` does, and draws the CLI’s breakdown figure', async () => {
    const { page, errors } = await openApp();
    await page.selectOption('#cost-model', 'deit-s');
    await page.waitForSelector('#cost-chart[data-json] svg');
    const app = JSON.parse((await page.locator('#cost-chart').getAttribute('data-json')) as string);
    const dir = mkdtempSync(join(tmpdir(), 'xbar-web-cost-'));
    writeFileSync(join(dir, 'spec.yaml'), await yamlOf(page));
    const cli = xbar(['cost', '--model', 'deit-s', '--hw', 'spec.yaml', '--json'], { cwd: dir });
    assert.equal(cli.status, 0, cli.stderr);
    const want = JSON.parse(cli.stdout);
    for (const key of ['energy_mJ', 'delay_ms', 'area_mm2', 'edap', 'tops_per_w', 'crossbars', 'by_stage'])
      assert.deepEqual(app[key], want[key], key);
    assert.match(await page.locator('#cost-status').innerText(), /^deit-s, 198 tokens, on rram-clipformer/);
    // the exports: the JSON is xbar cost --json's, the CSV has a row per stage, the PNG is a PNG
    const saved = async (button: string) => {
      const [d] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
      const file = join(dir, d.suggestedFilename());
      await d.saveAs(file);
      return readFileSync(file);
    };
    assert.deepEqual(JSON.parse(String(await saved('#export-json'))), want);
    const csv = String(await saved('#export-csv'))
      .trim()
      .split('\n');
    assert.equal(csv[0], 'layer,stage,macs,crossbars,energy_pJ,delay_ns,area_mm2');
    assert.equal(csv.length - 1, want.stages.length);
    assert.deepEqual([...(await saved('#export-png')).subarray(1, 4)], [...Buffer.from('PNG')]);
    assert.match(String(await saved('#export-svg')), /^<svg/);
    // pinned as A, then another spec as B: both columns and B / A, each equal to the CLI's
    await page.click('#pin');
    await page.selectOption('#preset', 'fefet-trex');
    await page.locator('#cost-totals', { hasText: 'B: fefet-trex' }).waitFor();
    const b = JSON.parse(
      xbar(['cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--json'], { cwd: dir }).stdout,
    ) as Record<string, number>;
    const energyRow = await page.locator('#cost-totals tr', { hasText: 'energy (mJ)' }).innerText();
    assert.match(energyRow, new RegExp(`${(b['energy_mJ']! / want.energy_mJ).toFixed(3)}×`));
    assert.match(
      await page.locator('#cost-totals tr').first().innerText(),
      /A: rram-clipformer\s+B: fefet-trex/,
    );
    // a spec with no cost numbers says why, as the CLI does
    await page.selectOption('#preset', 'ideal');
    await page.locator('#cost-status', { hasText: 'no cost:' }).waitFor();
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('a shared link reproduces the state in a new page', async () => {
    const { page } = await openApp();
    await page.selectOption('#preset', 'fefet-trex');
    await setField(page, 'adc.bits', '5');
    await page.locator('#yaml', { hasText: 'bits: 5' }).waitFor();
    const state = await yamlOf(page);
    await page.click('#share');
    const link = await page.locator('#status').getAttribute('data-link');
    assert.ok(link?.startsWith(url), String(link));
    const { page: other, errors } = await openApp(link as string);
    assert.equal(await yamlOf(other), state);
    assert.equal(await other.inputValue('[data-path="adc.bits"]'), '5');
    assert.deepEqual(errors, []);
    const shot = process.env['XBAR_SCREENSHOT'];
    if (shot) {
      await other.waitForSelector('#cost-chart svg');
      await other.screenshot({ path: shot, fullPage: false });
    }
    await page.close();
    await other.close();
  });
});
