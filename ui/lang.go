package ui

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// languages the console speaks; the first is the default.
var languages = []string{"en", "ja"}

// language picks the page language: the switch's cookie, else the best of
// Accept-Language (RFC 9110 §12.5.4: comma-separated ranges with optional
// q weights; "ja-JP" matches "ja"), else English.
func language(r *http.Request) string {
	if c, err := r.Cookie(langCookie); err == nil && known(c.Value) {
		return c.Value
	}
	if c, err := r.Cookie("__Host-" + langCookie); err == nil && known(c.Value) {
		return c.Value
	}
	best, bestQ := languages[0], 0.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				continue
			}
			q = f
		}
		primary, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if known(primary) && q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}

func known(lang string) bool {
	for _, l := range languages {
		if l == lang {
			return true
		}
	}
	return false
}

// setLang is the language switch: it remembers the choice for a year and
// goes back to the page it was pressed on.
func (s *Server) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PostFormValue("lang")
	if !known(lang) {
		s.plainError(w, r, http.StatusBadRequest, "err.badrequest", "unknown language")
		return
	}
	s.setCookie(w, r, langCookie, lang, 365*24*time.Hour)
	http.Redirect(w, r, localPath(r.PostFormValue("back")), http.StatusSeeOther)
}

// tr returns the text of key in the request's language. A missing key
// shows as itself, and TestCatalog makes sure none is missing.
func tr(ctx context.Context, key string) string {
	lang := infoFrom(ctx).lang
	if m, ok := catalog[key]; ok {
		if s := m[lang]; s != "" {
			return s
		}
		return m["en"]
	}
	return key
}

// trf formats the text of key with args.
func trf(ctx context.Context, key string, args ...any) string {
	return fmt.Sprintf(tr(ctx, key), args...)
}

// catalog holds every text of the console in English and Japanese.
var catalog = map[string]map[string]string{
	"app.name":        {"en": "Posthorn", "ja": "Posthorn"},
	"nav.dashboard":   {"en": "Dashboard", "ja": "ダッシュボード"},
	"nav.events":      {"en": "Event log", "ja": "イベントログ"},
	"nav.webhook":     {"en": "Event Webhook", "ja": "Event Webhook 設定"},
	"nav.logout":      {"en": "Log out", "ja": "ログアウト"},
	"nav.user":        {"en": "Logged in as %s", "ja": "%s でログイン中"},
	"nav.zone":        {"en": "Times in %s", "ja": "時刻は %s"},
	"lang.switch":     {"en": "Language", "ja": "言語"},
	"login.title":     {"en": "Log in", "ja": "ログイン"},
	"login.user":      {"en": "User name", "ja": "ユーザー名"},
	"login.password":  {"en": "Password", "ja": "パスワード"},
	"login.submit":    {"en": "Log in", "ja": "ログイン"},
	"login.wrong":     {"en": "Wrong user name or password.", "ja": "ユーザー名またはパスワードが違います。"},
	"login.limited":   {"en": "Too many failed logins. Wait a minute and try again.", "ja": "ログインの失敗が多すぎます。1 分待ってから再度お試しください。"},
	"login.hint":      {"en": "Users are created on the server with: posthorn user add NAME", "ja": "ユーザーはサーバー上で posthorn user add NAME で作成します"},
	"dash.title":      {"en": "Dashboard", "ja": "ダッシュボード"},
	"dash.counts":     {"en": "Delivery events in the last 24 hours", "ja": "過去 24 時間の配送イベント"},
	"dash.recent":     {"en": "Newest events", "ja": "最新のイベント"},
	"dash.live":       {"en": "Updated every 10 seconds.", "ja": "10 秒ごとに更新されます。"},
	"dash.webhook":    {"en": "Event Webhook", "ja": "Event Webhook"},
	"dash.nowebhook":  {"en": "Not set up: no events are posted.", "ja": "未設定: イベントは送信されません。"},
	"dash.posting":    {"en": "Posting %s to %s", "ja": "%s を %s に送信"},
	"dash.total":      {"en": "Total", "ja": "合計"},
	"dash.inbound":    {"en": "Inbound Webhook in the last 24 hours", "ja": "過去 24 時間の Inbound Webhook"},
	"events.title":    {"en": "Event log", "ja": "イベントログ"},
	"events.from":     {"en": "From", "ja": "開始"},
	"events.to":       {"en": "To", "ja": "終了"},
	"events.status":   {"en": "Status", "ja": "ステータス"},
	"events.search":   {"en": "Search", "ja": "検索"},
	"events.csv":      {"en": "Download CSV", "ja": "CSV ダウンロード"},
	"events.none":     {"en": "No events match.", "ja": "該当するイベントはありません。"},
	"events.more":     {"en": "Showing the first %d results; more match. The CSV download holds all of them.", "ja": "最初の %d 件を表示しています。さらに該当があります。CSV ダウンロードにはすべて含まれます。"},
	"events.count":    {"en": "%d results.", "ja": "%d 件。"},
	"events.badtime":  {"en": "Enter a date and time such as 2025-06-01T09:30.", "ja": "2025-06-01T09:30 のように日時を入力してください。"},
	"events.order":    {"en": "“To” must be after “From”.", "ja": "終了は開始より後にしてください。"},
	"events.detail":   {"en": "Details", "ja": "詳細"},
	"events.close":    {"en": "Close", "ja": "閉じる"},
	"events.back":     {"en": "Back to the list", "ja": "一覧に戻る"},
	"events.notfound": {"en": "This event is no longer stored.", "ja": "このイベントはもう保存されていません。"},
	"events.prev":     {"en": "Previous", "ja": "前へ"},
	"events.next":     {"en": "Next", "ja": "次へ"},
	"events.page":     {"en": "Page %d of %d", "ja": "%d / %d ページ"},
	"events.anytime":  {"en": "Leave empty for no limit.", "ja": "空欄は制限なし。"},

	"col.time":        {"en": "Time", "ja": "日時"},
	"col.status":      {"en": "Status", "ja": "ステータス"},
	"col.to":          {"en": "Recipient", "ja": "宛先"},
	"col.origto":      {"en": "Original recipient", "ja": "元の宛先"},
	"col.from":        {"en": "Sender (Return-Path)", "ja": "送信者 (Return-Path)"},
	"col.fromhdr":     {"en": "From header", "ja": "From ヘッダー"},
	"col.subject":     {"en": "Subject", "ja": "件名"},
	"col.host":        {"en": "Host", "ja": "ホスト"},
	"col.reason":      {"en": "Reason", "ja": "理由"},
	"col.msgid":       {"en": "Message-ID", "ja": "Message-ID"},
	"col.queueid":     {"en": "Queue ID", "ja": "キュー ID"},
	"col.relay":       {"en": "Relay", "ja": "リレー"},
	"col.dsn":         {"en": "DSN", "ja": "DSN"},
	"col.delay":       {"en": "Delay (s)", "ja": "遅延 (秒)"},
	"col.class":       {"en": "Bounce class", "ja": "バウンス分類"},
	"col.attempt":     {"en": "Attempt", "ja": "試行回数"},
	"col.sourceip":    {"en": "Client address", "ja": "送信元アドレス"},
	"col.senderip":    {"en": "Server address", "ja": "配送先アドレス"},
	"col.endpoint":    {"en": "Endpoint URL", "ja": "エンドポイント URL"},
	"col.id":          {"en": "Event ID", "ja": "イベント ID"},
	"col.notposted":   {"en": "(not posted)", "ja": "(送信されていません)"},
	"col.notyet":      {"en": "(in a post not sent yet)", "ja": "(未送信の POST に含まれています)"},
	"events.noanswer": {"en": "(no answer)", "ja": "(応答なし)"},
	"events.post":     {"en": "Post", "ja": "POST"},
	"events.viewpost": {"en": "Open the post with all its attempts", "ja": "この POST と全試行を表示"},

	"status.queued":     {"en": "Queued", "ja": "キュー登録"},
	"status.succeeded":  {"en": "Succeeded", "ja": "配送成功"},
	"status.deferred":   {"en": "Deferred", "ja": "配送遅延"},
	"status.failed":     {"en": "Failed", "ja": "配送失敗"},
	"status.bounced":    {"en": "Bounced", "ja": "バウンス"},
	"status.registered": {"en": "Registered", "ja": "登録"},
	"status.deleted":    {"en": "Deleted", "ja": "削除"},

	"wh.title":           {"en": "Event Webhook settings", "ja": "Event Webhook 設定"},
	"wh.unavailable":     {"en": "The Event Webhook settings are not available in this build.", "ja": "このビルドでは Event Webhook 設定を利用できません。"},
	"wh.saved":           {"en": "Saved. The new settings apply to batches formed from now on.", "ja": "保存しました。新しい設定はこれから作られるバッチに適用されます。"},
	"wh.invalid":         {"en": "Not saved: correct the fields marked below.", "ja": "保存されていません。下の項目を修正してください。"},
	"wh.newsecret":       {"en": "New signing secret (shown only now; give it to the receiver):", "ja": "新しい署名シークレット (今回のみ表示。受信側に設定してください):"},
	"wh.basic":           {"en": "Basic settings", "ja": "基本設定"},
	"wh.advanced":        {"en": "Advanced", "ja": "詳細設定"},
	"wh.security":        {"en": "Security", "ja": "セキュリティ"},
	"wh.behaviour":       {"en": "Notification behaviour", "ja": "通知の動作"},
	"wh.endpoint":        {"en": "Endpoint URL", "ja": "エンドポイント URL"},
	"wh.endpoint.help":   {"en": "Required. https:// URL the events are posted to.", "ja": "必須。イベントの送信先 https:// URL。"},
	"wh.types":           {"en": "Event types", "ja": "イベントの種類"},
	"wh.deliveries":      {"en": "Deliveries", "ja": "Deliveries (配送)"},
	"wh.bounces":         {"en": "Bounces", "ja": "Bounces (バウンス)"},
	"wh.blocks":          {"en": "Blocks (version 2 or 3)", "ja": "Blocks (バージョン 2 以上)"},
	"wh.version":         {"en": "Version", "ja": "バージョン"},
	"wh.version.help":    {"en": "1 or 2: the hosted service's formats; 3: Posthorn's own (JSON).", "ja": "1 と 2: ホスティングサービスの形式。3: Posthorn 独自形式 (JSON)。"},
	"wh.timezone":        {"en": "Time zone", "ja": "タイムゾーン"},
	"wh.timezone.help":   {"en": "Required. IANA name such as Asia/Tokyo, or Local for the server's zone.", "ja": "必須。Asia/Tokyo などの IANA 名、またはサーバーのゾーンを表す Local。"},
	"wh.json":            {"en": "Use JSON format (version 2 or 3)", "ja": "JSON 形式を使う (バージョン 2 以上)"},
	"wh.basicuser":       {"en": "Basic authentication user", "ja": "Basic 認証ユーザー"},
	"wh.basicpass":       {"en": "Basic authentication password", "ja": "Basic 認証パスワード"},
	"wh.basicconfirm":    {"en": "Password again", "ja": "パスワード (確認)"},
	"wh.basic.help":      {"en": "Cannot be combined with Authorization: Bearer.", "ja": "Authorization: Bearer とは併用できません。"},
	"wh.apikey":          {"en": "API key", "ja": "API キー"},
	"wh.bearer":          {"en": "Send the API key as Authorization: Bearer", "ja": "API キーを Authorization: Bearer で送る"},
	"wh.signing":         {"en": "Signing secret (Standard Webhooks)", "ja": "署名シークレット (Standard Webhooks)"},
	"wh.generate":        {"en": "Generate a new signing secret", "ja": "新しい署名シークレットを生成する"},
	"wh.cafile":          {"en": "Extra CA certificates (PEM file path)", "ja": "追加の CA 証明書 (PEM ファイルのパス)"},
	"wh.cafile.help":     {"en": "Absolute path on the server, for an endpoint behind a private CA.", "ja": "サーバー上の絶対パス。プライベート CA のエンドポイント用。"},
	"wh.interval":        {"en": "Notify interval (seconds)", "ja": "通知間隔 (秒)"},
	"wh.interval.help":   {"en": "1–600, default 1.", "ja": "1〜600、既定値 1。"},
	"wh.maxevents":       {"en": "Max events per post", "ja": "1 回の最大イベント数"},
	"wh.maxevents.help":  {"en": "100–10000, default 100.", "ja": "100〜10000、既定値 100。"},
	"wh.timeout":         {"en": "Timeout (seconds)", "ja": "タイムアウト (秒)"},
	"wh.timeout.help":    {"en": "1–999, default 30, from connecting to the end of the response.", "ja": "1〜999、既定値 30。接続から応答の終わりまで。"},
	"wh.retry":           {"en": "Retry period", "ja": "再送期間"},
	"wh.retry.help":      {"en": "1h to 10d, default 1d (e.g. 36h, 2d).", "ja": "1h〜10d、既定値 1d (例: 36h, 2d)。"},
	"wh.isset":           {"en": "set", "ja": "設定済み"},
	"wh.notset":          {"en": "not set", "ja": "未設定"},
	"err.filtergone":     {"en": "409 conflict: the filter %q no longer exists; reload the settings", "ja": "409 競合: フィルター %q はもう存在しません。設定を再読み込みしてください"},
	"err.nofilter":       {"en": "404 not found: no filter named %q", "ja": "404 見つかりません: フィルター %q はありません"},
	"err.nopost":         {"en": "404 not found: no such post", "ja": "404 見つかりません: その POST はありません"},
	"err.notfailed":      {"en": "409 conflict: only a failed post can be replayed; this one is %s", "ja": "409 競合: 再送できるのは失敗した POST だけです (この POST は %s)"},
	"err.unauthorized":   {"en": "401 unauthorized: log in first", "ja": "401 未認証: 先にログインしてください"},
	"err.badrequest":     {"en": "400 bad request: %s", "ja": "400 不正なリクエスト: %s"},
	"err.toolarge":       {"en": "413 request entity too large: a form may hold at most %d KiB", "ja": "413 フォームが大きすぎます: 最大 %d KiB です"},
	"err.forbidden":      {"en": "403 forbidden: the form is out of date or did not come from this console; reload the page and try again", "ja": "403 禁止: フォームが古いか、このコンソールから送信されたものではありません。ページを再読み込みしてやり直してください"},
	"wh.pending":         {"en": "entered, not saved yet", "ja": "入力済み (未保存)"},
	"wh.replace.pending": {"en": "Leave empty to save the value entered; type to replace it.", "ja": "空欄のままなら入力済みの値を保存します。入力すると置き換えます。"},
	"err.sealed":         {"en": "The value entered before could not be kept; enter it again.", "ja": "前に入力した値を保持できませんでした。もう一度入力してください。"},
	"wh.replace":         {"en": "Leave empty to keep the current value.", "ja": "空欄のままなら現在の値を維持します。"},
	"wh.clear":           {"en": "Remove", "ja": "削除する"},
	"wh.save":            {"en": "Save", "ja": "保存"},
	"wh.test":            {"en": "Send test event", "ja": "テストイベントを送信"},
	"wh.test.help":       {"en": "Posts a sample event with the saved settings.", "ja": "保存済みの設定でサンプルイベントを送信します。"},
	"wh.test.result":     {"en": "The endpoint answered HTTP %d:", "ja": "エンドポイントの応答 HTTP %d:"},
	"wh.test.failed":     {"en": "The test post failed: %s", "ja": "テスト送信に失敗しました: %s"},
	"wh.test.noanswer":   {"en": "Save the settings first.", "ja": "先に設定を保存してください。"},

	"err.endpoint":       {"ja": "https:// で始まる正しい URL を入力してください。"},
	"err.version":        {"ja": "1、2、3 のいずれかを選んでください。"},
	"err.timezone":       {"ja": "Asia/Tokyo などの IANA タイムゾーン名、または Local を入力してください。"},
	"err.json":           {"ja": "JSON はバージョン 2 以上でのみ使えます (バージョン 3 では必須)。"},
	"err.blocks":         {"ja": "Blocks はバージョン 2 以上でのみ使えます。"},
	"err.basic_user":     {"ja": "コロンや制御文字は使えません。パスワードを設定する場合は必須です。"},
	"err.basic_password": {"ja": "パスワードが正しくありません。"},
	"err.api_key":        {"ja": "Bearer で送る場合は空白のない ASCII の API キーが必要です。"},
	"err.api_key_bearer": {"ja": "Basic 認証と Bearer は併用できません。どちらかを選んでください。"},
	"err.interval":       {"ja": "1〜600 の整数で入力してください。"},
	"err.max_events":     {"ja": "100〜10000 の整数で入力してください。"},
	"err.timeout":        {"ja": "1〜999 の整数で入力してください。"},
	"err.retry_period":   {"ja": "1h〜10d の期間で入力してください (例: 36h, 2d)。"},
	"err.signing_secret": {"ja": "whsec_ に続けて 24〜64 バイトの base64 を入力してください。"},
	"err.ca_file":        {"ja": "絶対パスで入力してください。"},
	"err.mismatch":       {"en": "The two passwords differ.", "ja": "2 つのパスワードが一致しません。"},
	"err.number":         {"en": "Enter a whole number from %d to %d.", "ja": "%d〜%d の整数で入力してください。"},
	"err.duration":       {"en": "Enter a period such as 36h or 2d, from 1h to 10d.", "ja": "36h や 2d のような期間を 1h〜10d の範囲で入力してください。"},

	"nav.inbound":         {"en": "Inbound log", "ja": "受信ログ"},
	"nav.inboundsettings": {"en": "Inbound Webhook", "ja": "Inbound Webhook 設定"},
	"inbound.title":       {"en": "Inbound log", "ja": "受信ログ"},
	"inbound.unavailable": {"en": "The inbound log is not available in this build.", "ja": "このビルドでは受信ログを利用できません。"},
	"nav.posts":           {"en": "Post log", "ja": "送信ログ"},
	"posts.title":         {"en": "Event Webhook post log", "ja": "Event Webhook 送信ログ"},
	"posts.unavailable":   {"en": "The post log is not available in this build.", "ja": "このビルドでは送信ログを利用できません。"},
	"posts.intro":         {"en": "One row per post (a batch of events), oldest first in the period searched; its detail shows every attempt.", "ja": "1 行が 1 回の送信（イベントのまとまり）です。検索した期間の古い順に表示します。詳細にはすべての試行が表示されます。"},
	"posts.replay":        {"en": "Replay", "ja": "再送"},
	"posts.replayed":      {"en": "%d posts queued again; posthorn serve posts them within seconds.", "ja": "%d 件の送信を再度キューに入れました。数秒以内に送信されます。"},
	"posts.type":          {"en": "Type", "ja": "種類"},
	"posts.events":        {"en": "%d events", "ja": "%d 件のイベント"},
	"posts.next":          {"en": "Next attempt", "ja": "次回の試行"},
	"posts.id":            {"en": "Batch id (webhook-id)", "ja": "バッチ ID（webhook-id）"},
	"posts.attempts":      {"en": "Attempts", "ja": "試行"},
	"posts.noattempts":    {"en": "Not attempted yet.", "ja": "まだ試行していません。"},
	"posts.code":          {"en": "HTTP code", "ja": "HTTP コード"},
	"posts.response":      {"en": "Response (start)", "ja": "応答（先頭）"},
	"posts.noanswer":      {"en": "no answer", "ja": "応答なし"},
	"posts.carried":       {"en": "Events in this post", "ja": "この送信のイベント"},
	"dash.spool":          {"en": "Backlog and endpoint health", "ja": "未送信と送信先の状態"},
	"dash.spool.event":    {"en": "Event Webhook (events)", "ja": "Event Webhook（イベント）"},
	"dash.spool.filter":   {"en": "Inbound filter %s", "ja": "Inbound フィルター %s"},
	"dash.nothingwaits":   {"en": "nothing waiting", "ja": "送信待ちなし"},
	"dash.posts":          {"en": "Event Webhook posts in the last 24 hours", "ja": "過去 24 時間の Event Webhook の POST"},
	"dash.recentinbound":  {"en": "Newest inbound mail", "ja": "最新の受信メール"},
	"dash.spool.inbound":  {"en": "Inbound Webhook (posts)", "ja": "Inbound Webhook（送信）"},
	"dash.pending":        {"en": "Waiting", "ja": "送信待ち"},
	"dash.oldest":         {"en": "Oldest waiting", "ja": "最も古い送信待ち"},
	"dash.health":         {"en": "Latest attempt", "ja": "直近の試行"},
	"dash.none":           {"en": "none", "ja": "なし"},
	"dash.noattempt":      {"en": "no attempt yet", "ja": "まだ試行なし"},
	"age.s":               {"en": "%d s ago", "ja": "%d 秒前"},
	"age.m":               {"en": "%d min ago", "ja": "%d 分前"},
	"age.h":               {"en": "%d h ago", "ja": "%d 時間前"},
	"age.d":               {"en": "%d days ago", "ja": "%d 日前"},
	"zip.title":           {"en": "Download the inbound log", "ja": "受信ログのダウンロード"},
	"zip.intro":           {"en": "The rows of this search are written as CSV into a ZIP archive encrypted with AES-256. Choose the password that will open it (7-Zip, WinZip, Windows and macOS open it).", "ja": "この検索の行を CSV にして、AES-256 で暗号化した ZIP に入れます。開くためのパスワードを決めてください（7-Zip、WinZip、Windows、macOS で開けます）。"},
	"zip.password":        {"en": "Archive password", "ja": "ZIP のパスワード"},
	"zip.confirm":         {"en": "Password again", "ja": "パスワード（確認）"},
	"zip.submit":          {"en": "Download ZIP", "ja": "ZIP をダウンロード"},
	"zip.link":            {"en": "Download (ZIP)", "ja": "ダウンロード（ZIP）"},
	"zip.short":           {"en": "At least 8 characters.", "ja": "8 文字以上にしてください。"},
	"zip.mismatch":        {"en": "The two passwords differ.", "ja": "2 つのパスワードが一致しません。"},
	"inbound.more":        {"en": "Showing the first %d results; more match. The download holds all of them.", "ja": "最初の %d 件を表示しています。さらに該当があります。ダウンロードにはすべて含まれます。"},
	"in.dom.at":           {"en": "line %d (%q): %s", "ja": "%d 行目 (%q): %s"},
	"in.dom.repeat":       {"en": "the same domain as line %d", "ja": "%d 行目と同じドメインです"},
	"in.dom.address":      {"en": "a domain, not an address: leave out the part before @", "ja": "アドレスではなくドメインを入力してください (@ より前は不要です)"},
	"in.dom.idna":         {"en": "not a valid internationalized domain name", "ja": "国際化ドメイン名として正しくありません"},
	"in.dom.label":        {"en": "not a domain name: each part between dots is 1 to 63 characters", "ja": "ドメイン名ではありません: ドットで区切られた各部分は 1〜63 文字です"},
	"in.dom.hyphen":       {"en": "not a domain name: a part cannot start or end with a hyphen", "ja": "ドメイン名ではありません: 各部分の先頭と末尾にハイフンは使えません"},
	"in.dom.chars":        {"en": "not a domain name: letters, digits, hyphens and dots only", "ja": "ドメイン名ではありません: 英字・数字・ハイフン・ドットのみ使えます"},
	"in.dom.long":         {"en": "too long: at most 253 characters", "ja": "長すぎます: 最大 253 文字です"},
	"in.dom.dot":          {"en": "write it without the trailing dot", "ja": "末尾のドットを除いてください"},
	"col.filter":          {"en": "Filter", "ja": "フィルター"},

	"istatus.queued":    {"en": "Queued", "ja": "送信待ち"},
	"istatus.succeeded": {"en": "Succeeded", "ja": "成功"},
	"istatus.deferred":  {"en": "Deferred", "ja": "再送待ち"},
	"istatus.failed":    {"en": "Failed", "ja": "失敗"},
	"istatus.denied":    {"en": "Denied", "ja": "拒否"},

	"in.title":              {"en": "Inbound Webhook settings", "ja": "Inbound Webhook 設定"},
	"in.unavailable":        {"en": "The Inbound Webhook settings are not available in this build.", "ja": "このビルドでは Inbound Webhook 設定を利用できません。"},
	"in.saved":              {"en": "Saved. The milter uses the new settings for the next message.", "ja": "保存しました。次のメールから新しい設定が使われます。"},
	"in.deleted":            {"en": "The filter was deleted.", "ja": "フィルターを削除しました。"},
	"in.domains":            {"en": "Allowed domains", "ja": "受信を許可するドメイン"},
	"in.domains.label":      {"en": "Recipient domains mail is accepted for", "ja": "メールを受け付ける宛先ドメイン"},
	"in.domains.help":       {"en": "One per line, e.g. example.com (not its subdomains); internationalized names in Unicode or xn-- form (kept as xn--).", "ja": "1 行に 1 つ (例: example.com。サブドメインは含みません)。国際化ドメインは Unicode でも xn-- 形式でも可 (xn-- 形式で保存)。"},
	"in.logdenied":          {"en": "Record mail refused because the recipient domain is not allowed", "ja": "宛先ドメインが許可されていないため拒否したメールを記録する"},
	"in.logdenied.help":     {"en": "Off by default: spam makes this log huge.", "ja": "既定はオフ。スパムでログが非常に大きくなります。"},
	"in.filters":            {"en": "Filters", "ja": "フィルター"},
	"in.addfilter":          {"en": "Add a filter", "ja": "フィルターを追加"},
	"in.editfilter":         {"en": "Filter %s", "ja": "フィルター %s"},
	"in.filter.title":       {"en": "Inbound filter", "ja": "受信フィルター"},
	"in.nofilters":          {"en": "No filters: accepted mail is not posted anywhere.", "ja": "フィルターがありません。受信したメールはどこにも送信されません。"},
	"in.name":               {"en": "Name", "ja": "名前"},
	"in.name.help":          {"en": "Required, unique. Posted as the filter parameter.", "ja": "必須、重複不可。filter パラメーターとして送信されます。"},
	"in.conditions":         {"en": "Conditions", "ja": "条件"},
	"in.conditions.help":    {"en": "All must match: a header name and a regular expression (RE2) on its value. To means the envelope recipient.", "ja": "すべてに一致したとき送信します。ヘッダー名とその値に対する正規表現 (RE2)。To はエンベロープの宛先です。"},
	"in.header":             {"en": "Header", "ja": "ヘッダー"},
	"in.pattern":            {"en": "Regular expression", "ja": "正規表現"},
	"in.remove":             {"en": "Remove", "ja": "削除"},
	"in.addcondition":       {"en": "Add a condition", "ja": "条件を追加"},
	"in.json":               {"en": "Use JSON format (without attachments)", "ja": "JSON 形式を使う (添付ファイルなし)"},
	"in.disabled":           {"en": "Disabled: keep the filter but do not use it", "ja": "無効: フィルターを残したまま使わない"},
	"in.disabled.state":     {"en": "Disabled", "ja": "無効"},
	"in.enabled":            {"en": "Enabled", "ja": "有効"},
	"in.retryinterval":      {"en": "Retry interval (seconds)", "ja": "再送間隔 (秒)"},
	"in.retryinterval.help": {"en": "10–600, default 60.", "ja": "10〜600、既定値 60。"},
	"in.retryperiod.help":   {"en": "1d to 10d, default 1d.", "ja": "1d〜10d、既定値 1d。"},
	"in.cancel":             {"en": "Cancel", "ja": "キャンセル"},
	"in.delete":             {"en": "Delete", "ja": "削除"},
	"in.delete.password":    {"en": "Your password", "ja": "あなたのパスワード"},
	"in.delete.wrong":       {"en": "Wrong password: the filter was not deleted.", "ja": "パスワードが違います。フィルターは削除されていません。"},
	"in.limits":             {"en": "Receive limits (Postfix)", "ja": "受信の制限 (Postfix)"},
	"in.limits.help":        {"en": "These are Postfix's own settings: change them with postconf -e NAME=VALUE (or in /etc/postfix/main.cf) and run postfix reload.", "ja": "これらは Postfix 自身の設定です。postconf -e NAME=VALUE (または /etc/postfix/main.cf) で変更し、postfix reload を実行してください。"},
	"in.limits.err":         {"en": "Could not read them: %s", "ja": "読み取れませんでした: %s"},

	"limit.message_size_limit":                  {"en": "Largest message accepted, in bytes.", "ja": "受け付ける最大のメールサイズ (バイト)。"},
	"limit.smtpd_client_connection_count_limit": {"en": "Concurrent sessions one client may open.", "ja": "1 クライアントが同時に開けるセッション数。"},
	"limit.smtpd_client_message_rate_limit":     {"en": "Messages one client may send per time unit (0: no limit).", "ja": "1 クライアントが単位時間に送れるメール数 (0: 制限なし)。"},
	"limit.in_flow_delay":                       {"en": "Pause per received message while the queue is busy.", "ja": "キューが混雑しているときの受信 1 通ごとの待ち時間。"},
	"limit.default_process_limit":               {"en": "Processes of one Postfix service when master.cf gives none.", "ja": "master.cf で指定のない Postfix サービスのプロセス数。"},
	"limit.master.cf smtp/inet maxproc":         {"en": "Concurrent SMTP sessions of all clients together (smtpd processes); change it with postconf -F smtp/inet/maxproc=N.", "ja": "全クライアント合計の同時 SMTP セッション数 (smtpd プロセス数)。postconf -F smtp/inet/maxproc=N で変更します。"},
	"limit.milter_max_message_size":             {"en": "Posthorn's own limit (posthorn.toml): a larger message is refused with 552 5.3.4.", "ja": "Posthorn 自身の制限 (posthorn.toml)。これより大きいメールは 552 5.3.4 で拒否されます。"},
	"in.limits.size":                            {"en": "Posthorn's [milter] max_message_size (%d bytes) is lower than Postfix's message_size_limit: mail between the two is accepted by Postfix, then refused by Posthorn. Raise max_message_size in posthorn.toml or lower message_size_limit.", "ja": "Posthorn の [milter] max_message_size (%d バイト) が Postfix の message_size_limit より小さいため、その間のサイズのメールは Postfix に受け付けられた後 Posthorn に拒否されます。posthorn.toml の max_message_size を上げるか message_size_limit を下げてください。"},

	"err.induration":        {"en": "Enter a period such as 2d or 36h, from 1d to 10d.", "ja": "2d や 36h のような期間を 1d〜10d の範囲で入力してください。"},
	"filter.name":           {"ja": "必須で、他のフィルターと重複しない名前を入力してください。"},
	"filter.endpoint":       {"ja": "https:// で始まる正しい URL を入力してください。"},
	"filter.conditions":     {"ja": "条件を 1 つ以上入力してください。"},
	"filter.basic_user":     {"ja": "コロンや制御文字は使えません。パスワードを設定する場合は必須です。"},
	"filter.basic_password": {"ja": "パスワードが正しくありません。"},
	"filter.api_key":        {"ja": "Bearer で送る場合は空白のない ASCII の API キーが必要です。"},
	"filter.api_key_bearer": {"ja": "Basic 認証と Bearer は併用できません。どちらかを選んでください。"},
	"filter.signing_secret": {"ja": "whsec_ に続けて 24〜64 バイトの base64 を入力してください。"},
	"filter.ca_file":        {"ja": "絶対パスで入力してください。"},
	"filter.retry_interval": {"ja": "10〜600 の整数で入力してください。"},
	"filter.retry_period":   {"ja": "1d〜10d の期間で入力してください。"},
	"filter.timeout":        {"ja": "1〜999 の整数で入力してください。"},
	"cond.header":           {"ja": "ヘッダー名を入力してください (空白やコロンは使えません)。"},
	"cond.pattern":          {"ja": "正しい正規表現 (RE2) を入力してください。空または無いヘッダーには ^$ を使います。"},

	"nav.blocks":             {"en": "Blocks", "ja": "ブロック"},
	"blocks.title":           {"en": "Suppression list (Blocks)", "ja": "ブロックリスト"},
	"blocks.intro":           {"en": "Mail to an address in effect here is not sent. An address takes effect at the daily execution time, at a time you choose, or now; the Event Webhook is told of each registration and deletion.", "ja": "ここで有効になっているアドレス宛てのメールは送信されません。アドレスは毎日の実行時刻、指定した日時、または今すぐ有効になります。登録と削除は Event Webhook に通知されます。"},
	"blocks.address":         {"en": "Address contains", "ja": "アドレス (部分一致)"},
	"blocks.created":         {"en": "Created", "ja": "作成日時"},
	"blocks.removed":         {"en": "Include deleted and cancelled entries", "ja": "削除・取消済みも含める"},
	"blocks.per":             {"en": "Rows per page", "ja": "1 ページの行数"},
	"blocks.count":           {"en": "Entries: %d.", "ja": "%d 件。"},
	"blocks.none":            {"en": "No entries match.", "ja": "該当するエントリはありません。"},
	"blocks.empty":           {"en": "The suppression list is empty.", "ja": "ブロックリストは空です。"},
	"blocks.col.address":     {"en": "Address", "ja": "アドレス"},
	"blocks.col.occurrences": {"en": "Bounces", "ja": "バウンス回数"},
	"blocks.col.created":     {"en": "Created", "ja": "作成"},
	"blocks.col.effective":   {"en": "Effective", "ja": "有効日時"},
	"blocks.col.expires":     {"en": "Expires", "ja": "監視期間の終了"},
	"blocks.col.removed":     {"en": "Removed", "ja": "解除日時"},
	"blocks.add":             {"en": "Add addresses", "ja": "アドレスを追加"},
	"blocks.addresses":       {"en": "Addresses, one per line", "ja": "アドレス (1 行に 1 つ)"},
	"blocks.addresses.help":  {"en": "Up to %d at a time, in at most 60 KB of text; posthorn blocks import FILE takes a list of any length.", "ja": "一度に %d 件、60 KB まで。それより多い場合は posthorn blocks import FILE を使ってください。"},
	"blocks.when":            {"en": "Takes effect", "ja": "有効にする時刻"},
	"blocks.when.next":       {"en": "At the next daily execution time", "ja": "次回の毎日の実行時刻"},
	"blocks.when.now":        {"en": "Now", "ja": "今すぐ"},
	"blocks.when.at":         {"en": "At", "ja": "指定日時"},
	"blocks.at":              {"en": "Date and time", "ja": "日時"},
	"blocks.at.help":         {"en": "In %s.", "ja": "%s の時刻。"},
	"blocks.watch":           {"en": "Watch period (days)", "ja": "監視期間 (日)"},
	"blocks.watch.help":      {"en": "The entry is lifted this many days after it takes effect; 0: never; empty: the configured period.", "ja": "有効になってからこの日数が過ぎると自動で解除されます。0: 解除しない。空欄: 設定ファイルの期間。"},
	"blocks.submit":          {"en": "Add", "ja": "追加"},
	"blocks.results":         {"en": "Result: %d registered, %d scheduled, %d already listed, %d refused.", "ja": "結果: 登録 %d 件、登録予定 %d 件、登録済み %d 件、拒否 %d 件。"},
	"blocks.results.gone":    {"en": "The result of that addition is no longer available; the list below shows what was added.", "ja": "その追加の結果はもう表示できません。追加されたものは下の一覧で確認できます。"},
	"blocks.results.retry":   {"en": "The addresses that were not added are back in the form below.", "ja": "追加されなかったアドレスを下のフォームに戻しました。"},
	"bout.registered":        {"en": "registered", "ja": "登録しました"},
	"bout.scheduled":         {"en": "scheduled for %s", "ja": "%s に登録予定"},
	"bout.exists":            {"en": "already listed", "ja": "登録済み"},
	"bout.invalid":           {"en": "refused: %s", "ja": "拒否: %s"},
	"bout.error":             {"en": "failed: see the posthorn log", "ja": "失敗: posthorn のログを参照してください"},
	"bout.skipped":           {"en": "not processed after the failure above", "ja": "上の失敗のため未処理"},
	"blocks.delete":          {"en": "Delete…", "ja": "削除…"},
	"blocks.delete.help":     {"en": "Mail to it is sent again, and a deleted record is posted.", "ja": "このアドレス宛てのメールが再び送信され、deleted の記録が通知されます。"},
	"blocks.delete.confirm":  {"en": "Delete %s", "ja": "%s を削除"},
	"blocks.cancel":          {"en": "Cancel…", "ja": "取消…"},
	"blocks.cancel.help":     {"en": "The registration never takes effect; nothing is posted.", "ja": "この登録は有効になりません。通知はありません。"},
	"blocks.cancel.confirm":  {"en": "Cancel the registration of %s", "ja": "%s の登録予定を取り消す"},
	"blocks.done.deleted":    {"en": "%s was deleted from the suppression list.", "ja": "%s をブロックリストから削除しました。"},
	"blocks.done.cancelled":  {"en": "The scheduled registration of %s was cancelled.", "ja": "%s の登録予定を取り消しました。"},
	"blocks.err.none":        {"en": "Enter at least one address.", "ja": "アドレスを 1 つ以上入力してください。"},
	"blocks.err.many":        {"en": "At most %d addresses at a time (this form has %d); use posthorn blocks import for more.", "ja": "一度に追加できるのは %d 件までです (入力は %d 件)。それより多い場合は posthorn blocks import を使ってください。"},
	"blocks.err.reason":      {"en": "Choose a reason from the list.", "ja": "一覧から理由を選んでください。"},
	"blocks.err.when":        {"en": "Choose when the addresses take effect.", "ja": "有効にする時刻を選んでください。"},
	"blocks.err.at":          {"en": "Enter a date and time such as 2025-06-01T09:30.", "ja": "2025-06-01T09:30 のように日時を入力してください。"},
	"blocks.err.past":        {"en": "This time has passed: choose a later one, or Now.", "ja": "この日時は過ぎています。後の日時か「今すぐ」を選んでください。"},
	"blocks.err.watch":       {"en": "Enter a whole number of days from 0 to %d, or leave it empty.", "ja": "0〜%d の整数 (日数) を入力するか、空欄にしてください。"},
	"blocks.err.gone":        {"en": "%s is no longer on the suppression list: it was removed meanwhile. The list below is current.", "ja": "%s はすでにブロックリストにありません (その間に解除されました)。下の一覧は最新です。"},
	"blocks.err.indelete":    {"en": "%s was not deleted: it has not taken effect yet, so it can only be cancelled. The list below is current.", "ja": "%s は削除されていません。まだ有効になっていないため、取消のみできます。下の一覧は最新です。"},
	"blocks.err.incancel":    {"en": "%s was not cancelled: it has taken effect meanwhile, so it can only be deleted. The list below is current.", "ja": "%s は取り消されていません。その間に有効になったため、削除のみできます。下の一覧は最新です。"},
	"blocks.err.invalid":     {"en": "%s is not an address.", "ja": "%s はアドレスではありません。"},
	"bstatus.scheduled":      {"en": "Scheduled", "ja": "登録予定"},
	"bstatus.registered":     {"en": "Registered", "ja": "登録中"},
	"bstatus.deleted":        {"en": "Deleted", "ja": "削除済み"},
	"bstatus.cancelled":      {"en": "Cancelled", "ja": "取消済み"},
	"breason.manual":         {"en": "manual", "ja": "手動"},
	"breason.unsubscribe":    {"en": "unsubscribe", "ja": "配信停止"},
	"bclass.1":               {"en": "unknown host", "ja": "宛先ホスト不明"},
	"bclass.2":               {"en": "unknown user", "ja": "宛先ユーザー不明"},
	"bclass.3":               {"en": "retransmission timeout", "ja": "再送タイムアウト"},
	"bclass.4":               {"en": "rejected by policy", "ja": "受信側ポリシーによる拒否"},
	"bclass.5":               {"en": "over capacity", "ja": "容量超過"},
	"bclass.6":               {"en": "forwarding error", "ja": "転送エラー"},
	"bclass.7":               {"en": "receiving server error", "ja": "受信サーバーのエラー"},
	"bclass.8":               {"en": "message too large", "ja": "メールサイズ超過"},
	"bclass.9":               {"en": "address format error", "ja": "アドレス形式エラー"},
	"bclass.10":              {"en": "blocked address", "ja": "ブロック済みアドレス"},
	"bclass.11":              {"en": "unsubscribed address", "ja": "配信停止済みアドレス"},
	"bclass.99":              {"en": "other permanent error", "ja": "その他の恒久的エラー"},
}
