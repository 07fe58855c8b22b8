// Package browsertest renders HTML pages in headless Chromium for tests:
// it returns the DOM after load and the script errors the page raised, and
// takes screenshots to look at. Tests of the report pages use it to prove
// that what mmablate writes opens in a real browser.
//
// Chromium runs with a fresh profile in a temporary directory, without
// network services, sync, component updates or a GPU, so a render depends
// only on the page. Errors are caught by a small hook script placed at the
// top of a temporary copy of the page (a <base> element keeps the page's
// relative links pointing at the original directory): uncaught exceptions,
// unhandled promise rejections, console.error calls and resources that fail
// to load. Chromium's own console log on stderr backs it up for errors
// raised before the hook could run.
package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// ErrNoBrowser is returned when no Chromium binary is found.
var ErrNoBrowser = errors.New("no headless Chromium found (install Debian's chromium package, or set MMABLATE_CHROMIUM)")

// binaries are the names Chromium goes by on Debian, Ubuntu and elsewhere.
var binaries = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome-headless-shell"}

// Find returns the path of the Chromium binary: $MMABLATE_CHROMIUM when
// set, else the first of the usual names on $PATH.
func Find() (string, error) {
	if p := os.Getenv("MMABLATE_CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("MMABLATE_CHROMIUM=%s: %w", p, err)
		}
		return path, nil
	}
	for _, name := range binaries {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", ErrNoBrowser
}

// Require returns the Chromium path for a test, or skips the test with the
// reason when there is none; with CI=true a missing browser fails the test
// instead, so CI cannot pass by skipping.
func Require(t testing.TB) string {
	t.Helper()
	path, err := Find()
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %v", err)
	}
	t.Skipf("skipping browser test: %v", err)
	return ""
}

// flags isolate the browser from the machine and the network: nothing of
// a render depends on a profile, an update or a remote service.
func flags(userDataDir string) []string {
	return []string{
		"--headless",
		"--no-sandbox", // root in containers; the page is our own output
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--disable-background-networking",
		"--disable-quic",
		"--no-first-run",
		"--disable-component-update",
		"--disable-sync",
		"--disable-extensions",
		"--hide-scrollbars",
		"--user-data-dir=" + userDataDir,
		"--enable-logging=stderr",
		"--v=0",
	}
}

// errAttr is the attribute the hook keeps its error list in.
const errAttr = "data-browsertest-errors"

// hook records errors as a JSON list in errAttr on <html>, then removes
// itself and, once the page has loaded, the <base> element, so the DOM
// returned is the page's own.
const hook = `<script data-browsertest="">(function(){
var errs=[];
function rec(m){errs.push(String(m));document.documentElement.setAttribute("` + errAttr + `",JSON.stringify(errs));}
window.addEventListener("error",function(e){
if(e.target&&e.target!==window&&e.target.tagName){rec("failed to load <"+e.target.tagName.toLowerCase()+"> "+(e.target.src||e.target.href||""));return;}
rec((e.message||"error")+(e.filename?" at "+e.filename+":"+e.lineno:""));},true);
window.addEventListener("unhandledrejection",function(e){rec("unhandled rejection: "+(e.reason&&e.reason.stack||e.reason));});
var ce=console.error;console.error=function(){rec("console.error: "+Array.prototype.join.call(arguments," "));return ce.apply(console,arguments);};
document.documentElement.setAttribute("` + errAttr + `","[]");
window.addEventListener("load",function(){var b=document.querySelector("base[data-browsertest]");if(b)b.remove();});
document.currentScript.remove();
})();</script>`

// instrument returns the page with the <base> element and the hook placed
// before anything else that could run or load, after a doctype. Both go on
// the doctype's line, so line numbers in error messages are the page's own.
func instrument(page []byte, dir string) []byte {
	base := fileURL(dir) + "/"
	head := `<base data-browsertest="" href="` + html.EscapeString(base) + `">` + strings.ReplaceAll(hook, "\n", "")
	if loc := doctype.FindIndex(page); loc != nil {
		out := append([]byte{}, page[:loc[1]]...)
		out = append(out, head...)
		return append(out, page[loc[1]:]...)
	}
	return append([]byte(head), page...)
}

var doctype = regexp.MustCompile(`(?i)^\s*<!doctype[^>]*>`)

// RenderDOM loads the HTML file in headless Chromium and returns the
// serialised DOM after the load event, and the script errors the page
// raised (uncaught exceptions, unhandled rejections, console.error calls,
// resources that failed to load), in order. err is for failures to run the
// browser, not for errors of the page.
func RenderDOM(ctx context.Context, htmlPath string) (dom string, consoleErrors []string, err error) {
	out, stderr, copyURL, err := run(ctx, htmlPath, "--dump-dom")
	if err != nil {
		return "", nil, err
	}
	dom, consoleErrors, err = extractErrors(string(out))
	if err != nil {
		return "", nil, fmt.Errorf("render %s: %w", htmlPath, err)
	}
	for _, m := range parseConsole(stderr) {
		if !strings.HasPrefix(m, "Uncaught") || containsError(consoleErrors, m) {
			continue
		}
		consoleErrors = append(consoleErrors, m)
	}
	// Name the page the caller gave, not the instrumented copy.
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return "", nil, err
	}
	for i, e := range consoleErrors {
		consoleErrors[i] = strings.ReplaceAll(e, copyURL, fileURL(abs))
	}
	return dom, consoleErrors, nil
}

// Screenshot renders the HTML file into a PNG of the given window size.
func Screenshot(ctx context.Context, htmlPath, pngPath string, width, height int) error {
	abs, err := filepath.Abs(pngPath)
	if err != nil {
		return err
	}
	_, _, _, err = run(ctx, htmlPath, "--screenshot="+abs, "--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height))
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("screenshot of %s: chromium wrote no %s", htmlPath, abs)
	}
	return nil
}

// run starts Chromium on an instrumented copy of htmlPath with the extra
// flags and returns its stdout and stderr, and the copy's URL.
func run(ctx context.Context, htmlPath string, extra ...string) (stdout, stderr []byte, copyURL string, err error) {
	bin, err := Find()
	if err != nil {
		return nil, nil, "", err
	}
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return nil, nil, "", err
	}
	page, err := os.ReadFile(abs)
	if err != nil {
		return nil, nil, "", err
	}
	tmp, err := os.MkdirTemp("", "browsertest-")
	if err != nil {
		return nil, nil, "", err
	}
	defer os.RemoveAll(tmp)
	copyPath := filepath.Join(tmp, "page.html")
	if err := os.WriteFile(copyPath, instrument(page, filepath.Dir(abs)), 0o644); err != nil {
		return nil, nil, "", err
	}
	copyURL = fileURL(copyPath)
	args := append(flags(filepath.Join(tmp, "profile")), extra...)
	cmd := exec.CommandContext(ctx, bin, append(args, copyURL)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		return nil, nil, "", fmt.Errorf("chromium on %s: %w\n%s", htmlPath, err, tail(e.Bytes(), 2000))
	}
	return o.Bytes(), e.Bytes(), copyURL, nil
}

func fileURL(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path)}).String()
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

var errAttrRE = regexp.MustCompile(` ` + errAttr + `="([^"]*)"`)

// extractErrors takes the hook's error list out of the dumped DOM.
func extractErrors(dom string) (string, []string, error) {
	m := errAttrRE.FindStringSubmatchIndex(dom)
	if m == nil {
		return "", nil, errors.New("the error hook did not run (the page replaced <html>, or Chromium did not load it)")
	}
	var errs []string
	if err := json.Unmarshal([]byte(html.UnescapeString(dom[m[2]:m[3]])), &errs); err != nil {
		return "", nil, fmt.Errorf("error list %q: %w", dom[m[2]:m[3]], err)
	}
	return dom[:m[0]] + dom[m[1]:], errs, nil
}

// consoleLine matches Chromium's log line for a console message, in the
// formats of Chromium ≥ 120 (CONSOLE:12]) and before (CONSOLE(12)]).
var consoleLine = regexp.MustCompile(`:CONSOLE[:(]\d*\)?\] "(.*)", source: `)

// parseConsole returns the messages of the console log lines in stderr.
func parseConsole(stderr []byte) []string {
	var msgs []string
	for _, line := range strings.Split(string(stderr), "\n") {
		if m := consoleLine.FindStringSubmatch(line); m != nil {
			msgs = append(msgs, m[1])
		}
	}
	return msgs
}

// containsError reports whether the hook already recorded message m (the
// hook's entries carry a location suffix, Chromium's an "Uncaught " prefix).
func containsError(errs []string, m string) bool {
	m = strings.TrimPrefix(m, "Uncaught ")
	for _, e := range errs {
		if strings.Contains(e, m) {
			return true
		}
	}
	return false
}
