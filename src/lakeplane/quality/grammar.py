"""The DQDL grammar, for lark's LALR parser.

Written for lakeplane from the public DQDL grammar (awslabs/dqdl) and the AWS Glue DQDL reference.
Where this grammar differs it is on purpose:

* arithmetic in dynamic bounds has the usual precedence (``*`` and ``/`` bind tighter than ``+`` and
  ``-``); DQDL's reference grammar gives every operator the same precedence;
* ``and`` binds tighter than ``or`` in composite rules, and parentheses around the parts of a
  composite rule are optional, as DQDL's grammar (not its prose) allows;
* connector words between parameters (``of``) are not accepted: no supported rule type needs them.

Keywords are plain string literals so that lark turns a name into a keyword only where the parser can
accept that keyword: a column called ``days`` still works as an unquoted parameter.
"""

GRAMMAR = r"""
start: metadata? data_sources? variable* section+

metadata: "Metadata" "=" dictionary
data_sources: "DataSources" "=" dictionary
dictionary: "{" [pair ("," pair)*] "}"
pair: STRING ":" (STRING | string_list)
string_list: "[" [STRING ("," STRING)*] "]"

variable: NAME "=" (operand | value_list)

?section: rules_section | analyzers_section
rules_section: "Rules" "=" "[" [rule_expr ("," rule_expr)*] ","? "]"
analyzers_section: "Analyzers" "=" "[" [analyzer ("," analyzer)*] ","? "]"

?rule_expr: rule_and
    | rule_expr _or rule_and -> or_rule
?rule_and: rule_atom
    | rule_and _and rule_atom -> and_rule
?rule_atom: dq_rule
    | "(" rule_expr ")"

dq_rule: NAME param* [condition] [where] tag*
analyzer: NAME param* [where]
param: STRING | NAME
where: "where" STRING
tag: "with" NAME condition

condition: COMPARATOR operand -> compare
    | [negation] _between operand _and operand -> between
    | [negation] _in (value_list | VARIABLE) -> in_list
    | [negation] "matches" STRING -> matches
negation: "not" | "NOT"
value_list: "[" [operand ("," operand)*] "]"

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
    | NUMBER unit -> duration
    | NAME "(" [operand ("," operand)*] ")" -> call
    | "(" sum ")"
    | STRING -> string
    | VARIABLE -> variable_ref
    | ("NULL" | "null") -> null
    | ("EMPTY" | "empty") -> empty
    | ("WHITESPACES_ONLY" | "whitespaces_only") -> whitespaces_only
!unit: "days" | "hours" | "minutes"

_and: "and" | "AND"
_or: "or" | "OR"
_between: "between" | "BETWEEN"
_in: "in" | "IN"

COMPARATOR: ">=" | "<=" | "!=" | ">" | "<" | "="
VARIABLE: /\$[A-Za-z_][A-Za-z0-9_]*/
NAME: /[A-Za-z_][A-Za-z0-9_.]*/
STRING: /"(?:[^"\\]|\\.)*"/s
NUMBER: /\d+(?:\.\d+)?/
COMMENT: /#[^\n]*/

%import common.WS
%ignore WS
%ignore COMMENT
"""
