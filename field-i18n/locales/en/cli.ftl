# The field command (the collector's handset and the center's command line)
cli-error = { "error: " }
cli-warning = { "warning: " }
cli-enrolled = enrolled as { $name } ({ $role }) with { $server }; cells: { $cells }
cli-synced = pushed { $pushed } ({ $refused } refused), pulled { $pulled }, { $photos } photos sent; { $up } bytes up, { $down } down, { $trips } round trips, { $seconds } s
cli-busy = ; the server was busy: waited and went on { $times } time(s)
cli-server-restored = the server was restored from a backup: everything this device holds of its own was sent again
cli-reissued = { $count } unsent changes re-issued as { $actor } (this device was restored from a backup or its clock was wrong)
cli-photo-not-sent = photo not sent: { $reason }
cli-status =
    server        { $server }
    user          { $user }
    pending       { $changes } changes, { $photos } photos
    refused       { $refused }
    buffered      { $buffered }
    last sync     { $last }
    store         { $size }; pruning after { $days } days would free { $free } ({ $prunable_photos } photos, { $fixes } raw fixes)
cli-never = never
cli-not-enrolled = (not enrolled)
cli-pruned = { $what } { $photos } photos ({ $photo_size }) and { $fixes } raw fixes confirmed by the center more than { $days } days ago; store { $before } → { $after }
cli-would-prune = would prune
cli-did-prune = pruned
cli-fix-recorded = fix recorded at { $at } ({ $pos })
cli-shift-start = shift start
cli-shift-end = shift end
cli-shift-recorded = { $kind } recorded at { $at }{ $cell }
cli-in-cell = { " " }in cell { $cell }
cli-case-edited = case { $id } edited
cli-task-answered = task { $id } answered; it goes to the center with the next sync
cli-written = { $count } written to { $file }
cli-bytes-written = { $bytes } bytes written to { $file }
cli-history = history
cli-case-status = status
cli-case-category = category
cli-case-where = where
cli-case-reported = reported
cli-case-by = by
cli-case-description = description
cli-case-photo = photo
cli-conflict = CONFLICT: a reviewer must resolve
cli-col-id = ID
cli-col-status = STATUS
cli-col-category = CATEGORY
cli-col-cell = CELL
cli-col-photos = PHOTOS
cli-col-description = DESCRIPTION
cli-col-device = DEVICE
cli-col-seq = SEQ
cli-col-at = AT
cli-col-lon-lat = LON,LAT
cli-col-acc-m = ACC_M
cli-col-points = POINTS
cli-col-first = FIRST
cli-col-last = LAST
cli-col-kind = KIND
cli-col-case = CASE
cli-col-due = DUE
cli-col-answer = ANSWER
cli-col-note = NOTE
cli-col-code = CODE
cli-col-zone = ZONE
cli-col-area-m2 = AREA_M2
cli-col-name = NAME
cli-col-days = DAYS
cli-col-categories = CATEGORIES
cli-col-cells = CELLS
cli-col-collector = COLLECTOR
cli-col-channel = CHANNEL
cli-col-per-hour = PER_HOUR
cli-col-verify = VERIFY
cli-col-state = STATE
cli-col-source = SOURCE
cli-col-role = ROLE
cli-col-company = COMPANY
cli-col-major = MAJOR
cli-col-name-zh = NAME_ZH
cli-col-name-en = NAME_EN
cli-sync-not-enrolled = this device is not enrolled: run `field enroll --server URL --code CODE`
