# field 命令（采集员的手持终端与中心的命令行）
cli-error = { "错误：" }
cli-warning = { "警告：" }
cli-enrolled = 已注册为 { $name }（{ $role }），服务器 { $server }；责任网格：{ $cells }
cli-synced = 上传 { $pushed } 条（拒收 { $refused } 条），下载 { $pulled } 条，照片 { $photos } 张；上行 { $up } 字节，下行 { $down } 字节，{ $trips } 次往返，{ $seconds } 秒
cli-busy = ；服务器繁忙：等待后继续 { $times } 次
cli-server-restored = 服务器已从备份恢复：本机持有的自己的数据已全部重新发送
cli-reissued = { $count } 条未发送的更改已重新签发为 { $actor }（本机曾从备份恢复或时钟有误）
cli-photo-not-sent = 照片未发送：{ $reason }
cli-status =
    服务器        { $server }
    用户          { $user }
    待上传        { $changes } 条更改，{ $photos } 张照片
    被拒收        { $refused }
    缓存          { $buffered }
    上次同步      { $last }
    存储          { $size }；清理 { $days } 天前的数据可释放 { $free }（{ $prunable_photos } 张照片，{ $fixes } 个原始定位点）
cli-never = 从未
cli-not-enrolled = （未注册）
cli-pruned = { $what } { $photos } 张照片（{ $photo_size }）和 { $fixes } 个已被中心确认超过 { $days } 天的原始定位点；存储 { $before } → { $after }
cli-would-prune = 可清理
cli-did-prune = 已清理
cli-fix-recorded = 已记录定位点 { $at }（{ $pos }）
cli-shift-start = 上岗
cli-shift-end = 下岗
cli-shift-recorded = { $kind } 已记录于 { $at }{ $cell }
cli-in-cell = ，网格 { $cell }
cli-case-edited = 案卷 { $id } 已修改
cli-task-answered = 任务 { $id } 已回复；下次同步时发往中心
cli-written = 已写入 { $count } 条到 { $file }
cli-bytes-written = 已写入 { $bytes } 字节到 { $file }
cli-history = 处理记录
cli-case-status = 状态
cli-case-category = 类别
cli-case-where = 位置
cli-case-reported = 上报
cli-case-by = 采集员
cli-case-description = 描述
cli-case-photo = 照片
cli-conflict = 冲突：须由受理员解决
cli-col-id = 编号
cli-col-status = 状态
cli-col-category = 类别
cli-col-cell = 网格
cli-col-photos = 照片
cli-col-description = 描述
cli-col-device = 设备
cli-col-seq = 序号
cli-col-at = 时间
cli-col-lon-lat = 经度,纬度
cli-col-acc-m = 精度（米）
cli-col-points = 点数
cli-col-first = 开始
cli-col-last = 结束
cli-col-kind = 类型
cli-col-case = 案卷
cli-col-due = 期限
cli-col-answer = 回复
cli-col-note = 备注
cli-col-code = 代码
cli-col-zone = 区域
cli-col-area-m2 = 面积（平方米）
cli-col-name = 名称
cli-col-days = 日期
cli-col-categories = 类别
cli-col-cells = 网格
cli-col-collector = 采集员
cli-col-channel = 渠道
cli-col-per-hour = 每小时上限
cli-col-verify = 核实时限
cli-col-state = 状态
cli-col-source = 来源
cli-col-role = 角色
cli-col-company = 公司
cli-col-major = 大类
cli-col-name-zh = 中文名称
cli-col-name-en = 英文名称
cli-sync-not-enrolled = 本机尚未注册：请先运行 `field enroll --server URL --code CODE`
