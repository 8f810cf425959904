package stories

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/microcosm-cc/bluemonday"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// linkRel is the rel every link in a summary carries.
const linkRel = "nofollow noopener"

// summaryPolicy allows the little HTML a story summary needs: paragraphs,
// line breaks, emphasis, lists, quotes and links to http(s) or mailto
// addresses. Everything else (images, scripts, styles, frames, event
// handlers) is removed.
func summaryPolicy() *bluemonday.Policy {
	p := bluemonday.NewPolicy()
	p.AllowElements("p", "br", "em", "strong", "b", "i", "ul", "ol", "li", "blockquote")
	p.AllowAttrs("href").OnElements("a")
	p.AllowAttrs("rel").Matching(regexp.MustCompile(`^` + linkRel + `$`)).OnElements("a")
	p.RequireParseableURLs(true)
	p.AllowRelativeURLs(false)
	p.AllowURLSchemes("http", "https", "mailto")
	return p
}

// SanitizeSummary returns summary HTML safe to put in a page or an email:
// relative links resolved against storyURL, every link marked
// rel="nofollow noopener", and only the elements of the summary policy kept.
func (s *Service) SanitizeSummary(summary, storyURL string) string {
	if strings.TrimSpace(summary) == "" {
		return ""
	}
	base, _ := url.Parse(storyURL)
	return strings.TrimSpace(s.policy.Sanitize(resolveLinks(summary, base)))
}

// resolveLinks rewrites every a[href] in the fragment to an absolute URL
// (dropping hrefs that are not http(s) or mailto) and sets its rel. The
// policy runs afterwards, so what this returns need not be safe.
func resolveLinks(fragment string, base *url.URL) string {
	body := &html.Node{Type: html.ElementNode, Data: "body", DataAtom: atom.Body}
	nodes, err := html.ParseFragment(strings.NewReader(fragment), body)
	if err != nil {
		return fragment
	}
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.DataAtom == atom.A {
			rewriteLink(n, base)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	var b strings.Builder
	for _, n := range nodes {
		walk(n)
		if err := html.Render(&b, n); err != nil {
			return fragment
		}
	}
	return b.String()
}

func rewriteLink(n *html.Node, base *url.URL) {
	href := ""
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == "href" {
			href = strings.TrimSpace(a.Val)
		}
	}
	n.Attr = nil
	if href == "" {
		return
	}
	if strings.HasPrefix(strings.ToLower(href), "mailto:") {
		n.Attr = []html.Attribute{{Key: "href", Val: href}, {Key: "rel", Val: linkRel}}
		return
	}
	if abs := resolveHTTP(base, href); abs != "" {
		n.Attr = []html.Attribute{{Key: "href", Val: abs}, {Key: "rel", Val: linkRel}}
	}
}
