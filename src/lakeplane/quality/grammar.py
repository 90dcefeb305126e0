"""The DQDL grammar, for lark's LALR parser.

Written for lakeplane from the public DQDL grammar (awslabs/dqdl) and the AWS Glue DQDL reference,
and as strict as that grammar: sections in its order (``Metadata``, ``DataSources``, variables,
``DefaultLabels``, ``Rules``, ``Analyzers``), no trailing commas, lower-case ``between``, ``in``,
``not`` and ``matches``, integer durations and sizes, dates as ``"YYYY-MM-DD"`` and times of day as
``"9:30 PM"`` or ``"21:30"``. Which kind of condition a rule takes (numbers, strings, dates,
durations, sizes) is checked after parsing, by rule type (:mod:`lakeplane.quality.validate`).

Where this grammar differs it is on purpose:

* arithmetic in dynamic bounds has the usual precedence (``*`` and ``/`` bind tighter than ``+`` and
  ``-``); DQDL's reference grammar gives every operator the same precedence;
* ``and`` binds tighter than ``or`` in composite rules;
* the document must end after its last section; the reference parser ignores what follows it.

Keywords are plain string literals so that lark turns a name into a keyword only where the parser can
accept that keyword: a column called ``days`` still works as an unquoted parameter.
"""

GRAMMAR = r"""
start: metadata? data_sources? variable* default_labels? sections

sections: rules_section analyzers_section?
    | analyzers_section
metadata: "Metadata" "=" dictionary
data_sources: "DataSources" "=" dictionary
dictionary: "{" pair ("," pair)* "}"
    | "{" "}" -> empty_dictionary
pair: STRING ":" (STRING | string_list)
string_list: "[" STRING ("," STRING)* "]"

variable: NAME "=" (operand | value_list)

default_labels: "DefaultLabels" "=" "[" [label ("," label)*] "]"
labels: "labels" "=" "[" [label ("," label)*] "]"
label: STRING "=" STRING

rules_section: "Rules" "=" "[" [rule_expr ("," rule_expr)*] "]"
analyzers_section: "Analyzers" "=" "[" [analyzer ("," analyzer)*] "]"

?rule_expr: rule_and
    | rule_expr _or rule_and -> or_rule
?rule_and: rule_atom
    | rule_and _and rule_atom -> and_rule
?rule_atom: dq_rule
    | "(" rule_expr ")" [labels] -> group

dq_rule: NAME param* [condition] [where] [labels] tag*
analyzer: NAME param*
param: [connector] (STRING | NAME | VARIABLE)
!connector: "of" | "OF" | "and" | "AND"
where: "where" STRING
tag: "with" NAME condition
    | "with" NAME COMPARATOR value_list -> list_tag

condition: COMPARATOR operand -> compare
    | [negation] "between" operand "and" operand -> between
    | [negation] "in" (value_list | VARIABLE) -> in_list
    | [negation] "matches" STRING -> matches
negation: "not"
value_list: "[" operand ("," operand)* "]"

?operand: sum
?sum: product
    | sum "+" product -> add
    | sum "-" product -> sub
?product: unary
    | product "*" unary -> mul
    | product "/" unary -> div
?unary: atom
    | "-" unary -> neg
?atom: NUMBER -> number
    | INT -> number
    | INT unit -> duration
    | INT SIZE_UNIT -> size
    | NAME "(" [operand ("," operand)*] ")" -> call
    | "(" sum ")" -> paren
    | STRING -> string
    | DATE -> date
    | TIME -> time
    | VARIABLE -> variable_ref
    | null
    | empty
    | whitespaces_only
null: "NULL" | "null"
empty: "EMPTY" | "empty"
whitespaces_only: "WHITESPACES_ONLY" | "whitespaces_only"
!unit: "days" | "hours" | "minutes"

_and: "and" | "AND"
_or: "or" | "OR"

COMPARATOR: ">=" | "<=" | "!=" | ">" | "<" | "="
SIZE_UNIT.2: /(?:TB|GB|MB|KB|B)(?![A-Za-z0-9_.])/
VARIABLE: /\$[A-Za-z0-9][A-Za-z0-9_.]*/
NAME: /[A-Za-z_][A-Za-z0-9_.]*/
DATE.3: /"\d{4}-\d{2}-\d{2}"/
TIME.3: /"(?:\d{1,2}:\d{2} (?:AM|PM)|\d{2}:\d{2})"/
STRING: /"(?:[^"\\]|\\.)*"/s
INT.2: /\d+(?![\d.])/
NUMBER: /\d+(?:\.\d+)?/
COMMENT: /#[^\n]*/

%import common.WS
%ignore WS
%ignore COMMENT
"""
