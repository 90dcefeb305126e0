"""The functions a query may call on Spark: an allow-list of what computes on values.

Spark resolves any name in the SQL it is given against its whole function registry, and some of its
built-ins reach past the values: ``reflect``/``java_method`` call static Java methods,
``input_file_name`` shows where the data files lie, ``current_user`` names the engine's account. So
on Spark a query may call a function only when it is known to compute on the values it is given
(strings, numbers, dates, conditionals, collections, hashes, JSON parsing, aggregates, windows).
Anything else, a UDF or a function added by a later Spark release included, is refused by name.

sqlglot parses a function it knows into a typed class and any other into ``exp.Anonymous``, which it
writes out under the name it was given. So the list has two halves: the typed classes whose meaning
is a value computation, whatever name they are written under on Spark (:data:`VALUE_FUNCTIONS`),
and the Spark built-ins, by the name Spark resolves (:data:`SPARK_FUNCTIONS`).

Left out on purpose (see :data:`SPARK_REFUSED` for the reasons): the JVM (``reflect``,
``java_method``, ``try_reflect``), files and their layout (``input_file_*``, ``spark_partition_id``,
``monotonically_increasing_id``), the engine's own identity and state (``current_user``,
``session_user``, ``user``, ``current_catalog``/``database``/``schema``/``path``, ``version``),
XML parsers (``xpath*``, ``from_xml``, ``schema_of_xml``: the JVM's XML parser reads external
entities unless configured not to), Avro and Protobuf codecs (jars, descriptor files),
``call_function`` (a function by name), ``raise_error``/``assert_true`` (engine errors carrying
chosen text), table functions (``range``, ``sql_keywords``, ``variant_explode``) and
``python_worker_logs``. Not listed yet, so refused until someone needs and reviews them: the
sketch families (``kll_*``, ``theta_*``, ``tuple_*``), ``st_*`` geometry, ``measure`` and
``counter_diff``.
"""

from __future__ import annotations

from sqlglot import exp


def _names(table: str) -> list[str]:
    """The names in a table of words (a list reads better so than as hundreds of quoted strings)."""
    return table.split()


#: sqlglot's typed functions that compute on their arguments' values, by the module sqlglot files
#: them under. Left out: engine and account state (``CurrentUser``, ``CurrentDatabase``,
#: ``SessionUser``...), file readers (``ReadParquet``, ``ReadCSV``, ``ToFile``), XML, AI and ML calls,
#: table generators and other dialects' secrets and search functions.
VALUE_FUNCTIONS: frozenset[type[exp.Func]] = frozenset(
    getattr(exp, name)
    for name in _names(
        """
    AnyValue ApproxPercentileAccumulate ApproxPercentileCombine ApproxPercentileEstimate
    ApproxQuantile ApproxQuantiles ApproxTopK ApproxTopKAccumulate ApproxTopKCombine
    ApproxTopKEstimate ApproxTopSum ApproximateSimilarity ArgMax ArgMin ArrayAgg ArrayConcatAgg
    ArrayUnionAgg ArrayUniqueAgg Avg Corr Count CountIf CovarPop CovarSamp CumeDist DenseRank First
    FirstValue GroupConcat Grouping GroupingId Kurtosis Lag Last LastValue Lead LogicalAnd LogicalOr
    Max Median Min Minhash MinhashCombine Mode NthValue Ntile ObjectAgg PercentRank PercentileCont
    PercentileDisc Quantile Rank RegrAvgx RegrAvgy RegrCount RegrIntercept RegrR2 RegrSlope RegrSxx
    RegrSxy RegrSyy RegrValx RegrValy RowNumber Skewness Stddev StddevPop StddevSamp Sum Variance
    VariancePop
    Array ArrayAll ArrayAny ArrayAppend ArrayCompact ArrayConcat ArrayConstructCompact
    ArrayContainedBy ArrayContains ArrayContainsAll ArrayDistinct ArrayExcept ArrayFilter ArrayFirst
    ArrayInsert ArrayIntersect ArrayLast ArrayMax ArrayMin ArrayOverlaps ArrayPosition ArrayPrepend
    ArrayRemove ArrayRemoveAt ArrayReverse ArraySize ArraySlice ArraySort ArraySum ArrayToString
    ArraysZip Explode Flatten GenerateSeries Inline List Map MapCat MapContainsKey MapDelete
    MapFromEntries MapInsert MapKeys MapPick MapSize Posexplode PosexplodeOuter Reduce Shuffle Stack
    StringToArray StrtokToArray Struct StructExtract ToArray ToMap Transform Unnest VarMap
    And ApproxDistinct Hll Or Pow RegexpLike Typeof Xor
    Case Cast CastToStrType Coalesce Collate Collation Columns Convert DecodeCase EqualNull Exists
    Greatest If IsArray Least Nullif Nvl2 Rand Randn Randstr ToBoolean Try TryCast Uniform Uuid WeekStart
    WidthBucket
    CheckJson FromJson JSONArray JSONArrayAgg JSONArrayAppend JSONArrayContains JSONArrayInsert
    JSONBContains JSONBContainsAllTopKeys JSONBContainsAnyTopKeys JSONBContainsTopKey
    JSONBDeleteAtPath JSONBExists JSONBExtract JSONBExtractScalar JSONBObjectAgg JSONBPathExists
    JSONBool JSONExists JSONExtract JSONExtractArray JSONExtractScalar JSONFormat JSONKeys
    JSONKeysAtDepth JSONObject JSONObjectAgg JSONRemove JSONSet JSONStripNulls JSONType ParseJSON
    Abs Acos Acosh Asin Asinh Atan Atan2 Atanh BitmapBitPosition BitmapBucketNumber
    BitmapConstructAgg BitmapCount BitmapOrAgg BitwiseAndAgg BitwiseCount BitwiseOrAgg BitwiseXorAgg
    Booland Boolnot Boolor BoolxorAgg Cbrt Ceil Cos Cosh CosineDistance Cot Coth Csc Csch Degrees
    DotProduct EuclideanDistance Exp Factorial Floor Getbit IsInf IsNan JarowinklerSimilarity Ln Log
    ManhattanDistance Nanvl Negative Pi Radians Rint Round SafeAdd SafeDivide SafeMultiply
    SafeNegate SafeSubtract Sec Sech Sign Sin Sinh Sqrt Tan Tanh Trunc
    Ascii Base64DecodeBinary Base64DecodeString Base64Encode BitLength ByteLength Chr CityHash64
    CodePointsToBytes CodePointsToString Compress Concat ConcatWs Contains ConvertToCharset Decode
    DecompressBinary DecompressString Elt Encode EndsWith FarmFingerprint Format FromBase FromBase32
    FromBase64 Hex HexDecodeString Initcap IsAscii Left Length Levenshtein Lower LowerHex MD5
    MD5Digest MD5NumberLower64 MD5NumberUpper64 Normalize NumberToStr Overlay Pad ParseBignumeric
    ParseNumeric ParseUrl RegexpCount RegexpExtract RegexpExtractAll RegexpFullMatch RegexpILike
    RegexpInstr RegexpReplace RegexpSplit RegexpSubstr Repeat Replace Reverse Right RtrimmedLength
    SHA SHA1Digest SHA2 SHA2Digest SafeConvertBytesToString Soundex SoundexP123 Space Split
    SplitPart StandardHash StartsWith StrPosition StrToMap String Strtok Stuff Substring
    SubstringIndex ToBase32 ToBase64 ToBinary ToChar ToCodePoints ToDecfloat ToDouble ToNumber
    Translate Trim TryBase64DecodeBinary TryBase64DecodeString TryHexDecodeBinary TryHexDecodeString
    TryToDecfloat Unhex Unicode Upper WeightString
    AddMonths ConvertTimezone CurrentDate CurrentDatetime CurrentTime CurrentTimestamp
    CurrentTimestampLTZ CurrentTimezone Date DateAdd DateBin DateDiff DateFromParts DateFromUnixDate
    DateStrToDate DateSub DateToDateStr DateToDi DateTrunc Datetime DatetimeAdd DatetimeDiff
    DatetimeSub DatetimeTrunc Day DayOfMonth DayOfWeek DayOfWeekIso DayOfYear Dayname DiToDate
    Extract FromISO8601Date FromISO8601Timestamp FromISO8601TimestampNanos GenerateDateArray
    GenerateTimestampArray GetExtract Hour JustifyDays JustifyHours JustifyInterval LastDay
    Localtime Localtimestamp MakeInterval Minute Month Monthname MonthsBetween NextDay ParseDatetime
    ParseTime PreviousDay Quarter Second StrToDate StrToTime StrToUnix Systimestamp Time TimeAdd
    TimeDiff TimeFromParts TimeSlice TimeStrToDate TimeStrToTime TimeStrToUnix TimeSub TimeToStr
    TimeToTimeStr TimeToUnix TimeTrunc Timestamp TimestampAdd TimestampDiff TimestampFromParts
    TimestampLtzFromParts TimestampSub TimestampTrunc TimestampTzFromParts ToDays TsOrDiToDi
    TsOrDsAdd TsOrDsDiff TsOrDsToDate TsOrDsToDateStr TsOrDsToDatetime TsOrDsToTime
    TsOrDsToTimestamp UnixDate UnixMicros UnixMillis UnixSeconds UnixToStr UnixToTime UnixToTimeStr
    UtcDate UtcTime UtcTimestamp Week WeekOfYear Year YearOfWeek YearOfWeekIso
    """
    )
)

#: Spark SQL built-ins (Spark 4) that compute on values, by the name Spark resolves; a function
#: sqlglot does not know reaches Spark under this name.
SPARK_FUNCTIONS: frozenset[str] = frozenset(
    _names(
        """
    abs acos acosh asin asinh atan atan2 atanh bin bround cbrt ceil ceiling conv cos cosh cot csc
    degrees div e exp expm1 factorial floor hypot isnan ln log log10 log1p log2 mod nanvl negative
    pi pmod positive pow power radians rint round sec sign signum sin sinh sqrt tan tanh try_add
    try_divide try_mod try_multiply try_subtract width_bucket bit_count bit_get getbit shiftleft
    shiftright shiftrightunsigned
    ascii base64 bit_length btrim char char_length character_length chr collate collation concat
    concat_ws contains decode elt encode endswith find_in_set format_number format_string initcap
    instr is_valid_utf8 jaro_winkler_similarity lcase left len length levenshtein locate lower lpad
    ltrim luhn_check make_valid_utf8 mask octet_length overlay position printf quote randstr
    regexp regexp_count regexp_extract regexp_extract_all regexp_instr regexp_like
    regexp_replace regexp_substr repeat replace reverse right rlike rpad rtrim sentences soundex
    space split split_part startswith substr substring substring_index to_binary to_char to_number
    to_varchar translate trim try_to_binary try_to_number try_validate_utf8 ucase unbase64 unhex
    upper validate_utf8 from_base32 to_base32 hex like ilike parse_url try_parse_url url_decode
    url_encode try_url_decode
    crc32 hash hmac md5 sha sha1 sha2 xxhash64 aes_decrypt aes_encrypt try_aes_decrypt
    add_months convert_timezone curdate current_date current_time current_timestamp
    current_timezone date_add date_diff date_format date_from_unix_date date_part date_sub
    date_trunc dateadd datediff datepart day dayname dayofmonth dayofweek dayofyear extract
    from_unixtime from_utc_timestamp hour last_day localtime localtimestamp make_date
    make_dt_interval make_interval make_time make_timestamp make_timestamp_ltz make_timestamp_ntz
    make_ym_interval minute month monthname months_between next_day now quarter second
    session_window time time_bucket time_diff time_from_micros time_from_millis time_from_seconds
    time_to_micros time_to_millis time_to_seconds time_trunc timestamp_micros timestamp_millis
    timestamp_nanos timestamp_seconds to_date to_time to_timestamp to_timestamp_ltz
    to_timestamp_ntz to_unix_timestamp to_utc_timestamp trunc try_make_interval
    try_make_timestamp try_make_timestamp_ltz try_make_timestamp_ntz try_to_date try_to_time
    try_to_timestamp unix_date unix_micros unix_millis unix_nanos unix_seconds unix_timestamp
    weekday weekofyear window window_time year
    between case coalesce equal_null greatest if ifnull isnotnull isnull least nullif nullifzero
    nvl nvl2 when zeroifnull and or not in
    bigint binary boolean cast date decimal double float int smallint string timestamp tinyint
    typeof
    aggregate array array_append array_compact array_contains array_distinct array_except
    array_insert array_intersect array_join array_max array_min array_position array_prepend
    array_remove array_repeat array_size array_sort array_union arrays_overlap arrays_zip
    cardinality element_at exists explode explode_outer filter flatten forall get inline
    inline_outer map map_concat map_contains_key map_entries map_filter map_from_arrays
    map_from_entries map_keys map_values map_zip_with named_struct posexplode posexplode_outer
    reduce sequence shuffle size slice sort_array stack str_to_map struct transform
    transform_keys transform_values try_element_at zip_with
    from_csv from_json get_json_object json_array_length json_object_keys json_tuple
    schema_of_csv schema_of_json to_csv to_json is_valid_variant is_variant_null parse_json
    schema_of_variant schema_of_variant_agg to_variant_object try_parse_json try_variant_get
    try_variant_array_append try_variant_insert try_variant_set variant_array_append
    variant_delete variant_get variant_insert variant_set variant_strip_nulls to_xml
    any any_value approx_count_distinct approx_percentile approx_top_k approx_top_k_accumulate
    approx_top_k_combine approx_top_k_estimate array_agg avg bit_and bit_or bit_xor
    bitmap_and_agg bitmap_bit_position bitmap_bucket_number bitmap_construct_agg bitmap_count
    bitmap_or_agg bool_and bool_or collect_list collect_set collect_union corr count count_if
    count_min_sketch covar_pop covar_samp every first grouping grouping_id histogram_numeric
    hll_sketch_agg hll_sketch_estimate hll_union hll_union_agg kurtosis last listagg max max_by
    mean median min min_by mode percentile percentile_approx percentile_cont percentile_disc
    regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
    skewness some std stddev stddev_pop stddev_samp string_agg sum try_avg try_sum var_pop
    var_samp variance
    cume_dist dense_rank first_value lag last_value lead nth_value ntile percent_rank rank
    row_number
    rand randn random uniform uuid
    vector_avg vector_cosine_similarity vector_inner_product vector_l2_distance vector_norm
    vector_normalize vector_sum
    """
    )
)

#: Spark built-ins a query may never call, and why: kept apart so that a test can prove no name is
#: on both lists and the reasons are written down once.
SPARK_REFUSED: dict[str, str] = {
    **dict.fromkeys(("reflect", "java_method", "try_reflect"), "calls a static Java method"),
    "call_function": "calls any function by its name, out of reach of this list",
    **dict.fromkeys(
        ("input_file_name", "input_file_block_start", "input_file_block_length"),
        "shows the data files' paths and layout",
    ),
    **dict.fromkeys(
        ("spark_partition_id", "monotonically_increasing_id"),
        "depends on the physical plan (files, splits), not on the values, and differs between runs",
    ),
    **dict.fromkeys(
        ("current_user", "session_user", "user"),
        "names the engine's operating-system account, not the principal",
    ),
    **dict.fromkeys(
        ("current_catalog", "current_database", "current_schema", "current_path", "version"),
        "reads the engine's own state",
    ),
    **dict.fromkeys(
        (
            "xpath",
            "xpath_boolean",
            "xpath_double",
            "xpath_float",
            "xpath_int",
            "xpath_long",
            "xpath_number",
            "xpath_short",
            "xpath_string",
            "from_xml",
            "schema_of_xml",
        ),
        "parses XML with the JVM's parser (external entities)",
    ),
    **dict.fromkeys(
        ("from_avro", "to_avro", "schema_of_avro", "from_protobuf", "to_protobuf"),
        "needs codec jars and may read descriptor files",
    ),
    **dict.fromkeys(("raise_error", "assert_true"), "makes an engine error carry chosen text"),
    **dict.fromkeys(
        ("range", "sql_keywords", "variant_explode", "variant_explode_outer", "collations"),
        "a table function",
    ),
    "python_worker_logs": "reads the engine's Python worker logs",
}
